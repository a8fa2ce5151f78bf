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


def test_shared_helper_reloads_a_learner():
    # In a fresh process: test_meta_learner.py's
    # test_fresh_process_load_continues_fit_like_the_original.
    learner = kse.MetaLearner(tiny_mlp(), "metasgd", inner_lr=0.02)
    x = np.linspace(-1, 1, 8, dtype="float32")[:, None]
    loaded = kse.testing.run_model_saving_test(learner, x, (None, 1), fresh_process=False)
    for a, b in zip(learner.inner_lrs, loaded.inner_lrs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _small_net(kind):
    if kind == "conv4":  # convolutions and BatchNorm: the graph loop over tasks
        return kse.zoo.build("conv4", num_classes=3, input_shape=(16, 16, 1), filters=4, seed=0)
    if kind == "char_rnn":  # a recurrent layer (non-cuDNN): the graph loop
        return kse.zoo.build("char_rnn", vocab_size=9, embed_dim=4, units=6, seed=0)
    return kse.zoo.build("gpt", vocab_size=9, num_layers=1, num_heads=2, width=8, block_size=6,
                         seed=0)


def _small_tasks(kind):
    rng = np.random.default_rng(2)
    if kind == "conv4":
        x = rng.uniform(size=(4, 2, 3, 16, 16, 1)).astype(np.float32)  # support, query
        y = rng.integers(0, 3, size=(4, 2, 3)).astype(np.int32)
    else:
        tokens = rng.integers(3, 9, size=(4, 2, 2, 7)).astype(np.int32)
        x, y = tokens[..., :-1], tokens[..., 1:]
    return (x[:, 0], y[:, 0]), (x[:, 1], y[:, 1])


@pytest.mark.parametrize("kind, algorithm", [
    ("conv4", "maml"), ("conv4", "fomaml"), ("char_rnn", "maml"), ("gpt", "anil")])
def test_the_graph_loop_over_tasks_on_two_replicas_equals_one_device(one_and_two_replicas,
                                                                       kind, algorithm):
    data = _small_tasks(kind)
    initial = _small_net(kind).get_weights()
    loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if kind == "conv4"
            else None)
    extra = {"adapt_layers": ["final_norm"]} if algorithm == "anil" else {}

    def step(strategy):
        with strategy.scope():
            net = _small_net(kind)
            net.set_weights(initial)
            learner = kse.MetaLearner(net, algorithm, inner_lr=0.3, loss=loss,
                                      vectorize=False, **extra)
            learner.compile(optimizer=keras.optimizers.SGD(0.5))
        history = learner.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0).history
        return net.get_weights(), history["loss"][0]

    (single, single_loss), (mirrored, mirrored_loss) = one_and_two_replicas(step)
    assert max(np.abs(a - b).max() for a, b in zip(single, initial)) > 1e-5
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(single_loss, mirrored_loss, rtol=1e-5)
