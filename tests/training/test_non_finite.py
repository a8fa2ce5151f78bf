"""A diverging update stops fit with a clear error; earlier checkpoints stay intact."""

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from tests.training.helpers import build_tiny_model, make_batch


class _DivergesAt(keras.optimizers.schedules.LearningRateSchedule):
    """0.01, then an infinite learning rate from step ``step`` on."""

    def __init__(self, step):
        self.step = step

    def __call__(self, step):
        return keras.ops.where(step >= self.step, float("inf"), 0.01)

    def get_config(self):
        return {"step": self.step}


def _finite(weights):
    return all(np.all(np.isfinite(w)) for w in weights)


@pytest.mark.parametrize("save_freq", ["epoch", 1])
def test_self_evolving_model_stops_and_keeps_the_last_good_checkpoint(tmp_path, save_freq):
    # Four batches per epoch; the update of the last batch of epoch 2 (step 7) diverges,
    # with a finite loss at that step: only the weights show it.
    model = build_tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(_DivergesAt(7)), alpha=0.5,
                  reward_weighting="normalized")
    x, y = make_batch(n=32)
    checkpoint = tmp_path / "checkpoint.keras"
    with pytest.raises(kse.training.NonFiniteWeightsError, match="epoch 2, batch 4"):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[
            keras.callbacks.ModelCheckpoint(str(checkpoint), save_freq=save_freq)])
    saved = keras.saving.load_model(checkpoint, custom_objects={"_DivergesAt": _DivergesAt})
    assert _finite(saved.get_weights())
    assert not _finite(model.get_weights())
    # The checkpoint is the last good one: epoch 1's end, or the batch before the bad one.
    assert int(saved.optimizer.iterations) == (4 if save_freq == "epoch" else 7)


def test_a_bad_batch_still_only_stops_with_a_warning():
    model = build_tiny_model()
    model.compile(optimizer="sgd", alpha=0.5, reward_weighting="raw")
    x, y = make_batch(n=16)
    y["reward"] = np.abs(y["reward"])
    x[:] = np.inf  # the loss is not finite; the step applies no gradient
    before = model.get_weights()
    with pytest.warns(RuntimeWarning, match="no weight holds a NaN"):
        model.fit(x, {**y, "self": np.zeros_like(x)}, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("algorithm", ["maml", "reptile"])
def test_meta_learner_stops_at_the_diverging_update(algorithm):
    learner = kse.MetaLearner(kse.zoo.build("sinusoid_mlp", seed=0), inner_lr=0.01,
                              algorithm=algorithm)
    learner.compile(optimizer=keras.optimizers.SGD(_DivergesAt(2)))
    tasks = kse.data.sinusoid_tasks(5, 5, 4, seed=0, num_meta_batches=6)
    with pytest.raises(kse.training.NonFiniteWeightsError, match="MetaLearner.*batch 3"):
        learner.fit(tasks, epochs=1, verbose=0)
    assert int(learner.optimizer.iterations) == 3
