import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from tests.meta.test_meta_learner import task_batch, tiny_mlp


@pytest.mark.parametrize("algorithm", ["maml", "metasgd", "reptile"])
def test_two_replicas_equal_one_device_after_one_meta_step(one_and_two_replicas, algorithm):
    data = task_batch(tasks=4, seed=1)

    def step(strategy):
        with strategy.scope():
            learner = kse.MetaLearner(tiny_mlp(), algorithm, inner_lr=0.1, inner_steps=2)
            learner.compile(optimizer=keras.optimizers.SGD(0.5))
        dataset = tf.data.Dataset.from_tensors(data)
        history = learner.fit(dataset, epochs=1, verbose=0).history
        return learner.get_weights(), history["loss"][0]

    (single, single_loss), (mirrored, mirrored_loss) = one_and_two_replicas(step)
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(single_loss, mirrored_loss, rtol=1e-5)


def test_shared_helper_reloads_a_learner_in_a_fresh_process():
    learner = kse.MetaLearner(tiny_mlp(), "metasgd", inner_lr=0.02)
    x = np.linspace(-1, 1, 8, dtype="float32")[:, None]
    loaded = kse.testing.run_model_saving_test(learner, x, (None, 1))
    for a, b in zip(learner.inner_lrs, loaded.inner_lrs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
