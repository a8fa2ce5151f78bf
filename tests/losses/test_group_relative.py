"""Group-relative weightings (GRPO, RLOO) against NumPy, and their bounded negative push."""

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo import losses

# Three groups of four: mixed, all equal (weights must be 0, not NaN), one success.
REWARDS = np.array([0.2, 1.0, 0.5, 0.0, 0.7, 0.7, 0.7, 0.7, 0.0, 0.0, 1.0, 0.0], np.float32)


def numpy_group_weights(rewards, size, baseline, scale, epsilon=1e-4):
    """The advantages written from their definitions, one group at a time."""
    out = []
    for group in rewards.astype(np.float64).reshape(-1, size):
        if baseline == "mean":
            advantage = group - group.mean()
        else:  # leave one out: the mean of the other samples
            advantage = np.array([r - np.delete(group, i).mean() for i, r in enumerate(group)])
        if scale == "group_std":
            advantage = advantage / (group.std(ddof=1) + epsilon)
        out.append(advantage)
    return np.concatenate(out)


@pytest.mark.parametrize("baseline", ["mean", "leave_one_out"])
@pytest.mark.parametrize("scale", ["group_std", "none"])
def test_group_weights_match_numpy(baseline, scale):
    weighting = losses.GroupRelativeWeighting(4, baseline=baseline, scale=scale)
    got = weighting(REWARDS).numpy()
    np.testing.assert_allclose(got, numpy_group_weights(REWARDS, 4, baseline, scale),
                               rtol=1e-5, atol=1e-6)
    assert np.all(got[4:8] == 0.0)  # equal rewards: zero, never NaN


def test_named_group_weightings_are_grpo_and_rloo():
    grpo = losses.get_reward_weighting("grpo").with_group_size(4)
    rloo = losses.get_reward_weighting("rloo").with_group_size(4)
    np.testing.assert_allclose(grpo(REWARDS).numpy(),
                               numpy_group_weights(REWARDS, 4, "mean", "group_std"), rtol=1e-5)
    np.testing.assert_allclose(rloo(REWARDS).numpy(),
                               numpy_group_weights(REWARDS, 4, "leave_one_out", "none"),
                               rtol=1e-5, atol=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(grpo))
    assert again.get_config() == grpo.get_config()


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(group_size=1), "`group_size` must be an integer ≥ 2"),
    (dict(group_size=2.0), "`group_size`"),
    (dict(group_size=2, baseline="median"), "`baseline` must be one of"),
    (dict(group_size=2, scale="batch"), "`scale` must be one of"),
    (dict(group_size=2, epsilon=float("nan")), "`epsilon`"),
])
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        losses.GroupRelativeWeighting(**kwargs)


def _softmax_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    return kse.SelfEvolvingModel(inputs, {"policy": keras.layers.Dense(
        4, activation="softmax")(hidden)})


def test_fit_needs_whole_groups_and_a_group_size():
    x = np.ones((6, 3), np.float32)
    y = {"policy": np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]],
         "reward": np.arange(6, dtype=np.float32)}
    model = _softmax_model()
    model.compile(optimizer="sgd", alpha=0.0, reward_weighting="grpo")
    with pytest.raises(ValueError, match="needs `group_size`"):
        model.fit(x, y, verbose=0)
    model = _softmax_model()
    model.compile(optimizer="sgd", alpha=0.0,
                  reward_weighting=losses.GroupRelativeWeighting(4))
    with pytest.raises(ValueError, match="whole groups of 4"):
        model.fit(x, y, batch_size=6, verbose=0)  # 6 rows: one group and a half
    with pytest.raises(ValueError, match="whole groups of 4"):
        model.fit(x[:4].repeat(2, 0), {k: v[:4].repeat(2, 0) for k, v in y.items()},
                  batch_size=6, verbose=0)  # the batch of 6 splits a group


def test_a_negative_advantage_pushes_away_but_stays_bounded():
    # One observation, two samples: action 0 scored 0, action 1 scored 1. GRPO weights are
    # -1/sqrt(2) and +1/sqrt(2): the policy moves to action 1, and the loss (the mean of
    # w * ||y - p||^2 / 4 over the two rows) cannot fall below -|w| * 2 / 4 / 2.
    x = np.ones((2, 3), np.float32)
    y = {"policy": np.eye(4, dtype=np.float32)[[0, 1]], "reward": np.array([0.0, 1.0])}
    model = _softmax_model()
    model.compile(optimizer=keras.optimizers.SGD(5.0), alpha=0.0,
                  reward_weighting=losses.GroupRelativeWeighting(2))
    history = [model.train_on_batch(x, y, return_dict=True)["loss"] for _ in range(300)]
    bound = -(1 / np.sqrt(2)) * 2 / 4 / 2
    assert min(history) >= bound - 1e-6
    assert history[-1] < bound * 0.9  # it got there: the push away from action 0 worked
    probabilities = model.predict(x[:1], verbose=0)["policy"][0]
    assert probabilities[1] > 0.9 and probabilities[0] < 0.05
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
