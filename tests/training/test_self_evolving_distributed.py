"""A step on 2 logical-CPU replicas equals a step on one device with the same global batch."""

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from tests.training.helpers import build_tiny_model, make_batch


@keras.saving.register_keras_serializable(package="kse_tests")
class ThresholdMask(keras.layers.Layer):
    """A deterministic stand-in for RandomMasking: masks the elements above 0.5."""

    def call(self, x):
        mask = keras.ops.cast(x > 0.5, x.dtype)
        return x * (1 - mask), mask


def build_masked_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    corrupted, mask = ThresholdMask()(inputs)
    hidden = keras.layers.Dense(8, activation="tanh")(corrupted)
    return kse.SelfEvolvingModel(inputs, {
        "self": keras.layers.Dense(6, activation="sigmoid")(hidden),
        "policy": keras.layers.Dense(3)(hidden),
        "mask": mask,
    })


def skewed_batch(n=16):
    """Replicas see different halves: their local reward statistics differ from the global."""
    x, y = make_batch(n=n, actions=True, self_target=True)
    y["reward"] = np.abs(y["reward"])
    y["reward"][n // 2:] += 3.0
    x[n // 2:] *= 0.6  # fewer masked elements on the second replica
    sample_weight = np.linspace(0.5, 1.5, n).astype(np.float32)
    return x, y, sample_weight


def one_step(build, strategy, compile_kwargs, x, y, sample_weight, init=None):
    with strategy.scope():
        model = build()
        if init is not None:
            model.set_weights(init)
        model.compile(optimizer=keras.optimizers.SGD(0.5), **compile_kwargs)
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=len(x), epochs=1,
                        shuffle=False, verbose=0).history
    return model, history


CASES = {
    "raw": dict(reward_weighting="raw"),
    "normalized": dict(reward_weighting="normalized"),
    "awr": dict(reward_weighting="awr"),
    "filter": dict(reward_weighting="filter"),
    "filter_threshold": dict(reward_weighting=kse.losses.FilterWeighting(threshold=1.0)),
    "masked_self_loss": dict(reward_weighting="awr", masked_self_loss=True),
    # Groups of 4 consecutive samples: each replica's 8 hold two whole groups.
    "grpo": dict(reward_weighting=kse.losses.GroupRelativeWeighting(4)),
    "rloo": dict(reward_weighting=kse.losses.GroupRelativeWeighting(
        4, baseline="leave_one_out", scale="none")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_replicas_equal_one_device(one_and_two_replicas, case):
    x, y, sample_weight = skewed_batch()
    build = build_masked_model if case == "masked_self_loss" else build_tiny_model
    compile_kwargs = dict(alpha=0.4, **CASES[case])
    initial = build().get_weights()
    (single, single_logs), (replicated, replicated_logs) = one_and_two_replicas(
        lambda strategy: one_step(build, strategy, compile_kwargs, x, y, sample_weight,
                                  init=initial))
    moved = [np.abs(a - b).max() for a, b in zip(single.get_weights(), initial)]
    assert max(moved) > 1e-3  # the step did something
    for a, b in zip(single.get_weights(), replicated.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for key in ("loss", "self_loss", "reinforce_loss", "alpha"):
        np.testing.assert_allclose(single_logs[key], replicated_logs[key], rtol=1e-5)


def test_local_statistics_would_differ(two_cpus):
    """Guards the test above: per-replica reward statistics give other weights."""
    _, y, _ = skewed_batch()
    awr = kse.losses.AWRWeighting()
    halves = np.concatenate([awr(y["reward"][:8]).numpy(), awr(y["reward"][8:]).numpy()])
    assert np.abs(halves - awr(y["reward"]).numpy()).max() > 0.1
