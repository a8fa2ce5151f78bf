import keras
import numpy as np
import pytest

from keras_selfevo import losses

rng = np.random.default_rng(0)
TARGET = rng.uniform(size=(6, 5, 4)).astype(np.float32)
PROBS = rng.uniform(0.05, 0.95, size=(6, 5, 4)).astype(np.float32)


def numpy_bce(t, p):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def test_self_supervised_loss_equals_keras_binary_crossentropy():
    ours = losses.SelfSupervisedLoss()(TARGET, PROBS)
    theirs = keras.losses.BinaryCrossentropy()(TARGET, PROBS)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)
    np.testing.assert_allclose(float(ours), numpy_bce(TARGET, PROBS).mean(), rtol=1e-5)


def test_self_supervised_loss_from_logits():
    logits = np.log(PROBS / (1 - PROBS))
    ours = losses.SelfSupervisedLoss(from_logits=True)(TARGET, logits)
    np.testing.assert_allclose(float(ours), numpy_bce(TARGET, PROBS).mean(), rtol=1e-5)


def test_masked_self_supervised_loss_counts_masked_elements_only():
    mask = (rng.uniform(size=TARGET.shape) < 0.3).astype(np.float32)
    value = losses.SelfSupervisedLoss().masked(TARGET, PROBS, mask)
    expected = (numpy_bce(TARGET, PROBS) * mask).sum() / mask.sum()
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)


@pytest.mark.parametrize("with_action", [False, True])
def test_reward_weighted_squared_loss_matches_formula(with_action):
    y = rng.normal(size=(8, 3)).astype(np.float32)
    f = rng.normal(size=(8, 3)).astype(np.float32)
    r = rng.uniform(size=(8,)).astype(np.float32)
    a = rng.uniform(0.5, 2.0, size=(8, 1)).astype(np.float32) if with_action else None
    targets = {"policy": y, "reward": r} | ({"action": a} if with_action else {})
    value = losses.RewardWeightedSquaredLoss("raw")(targets, f)
    scale = a if with_action else 1.0
    expected = np.mean(r * np.mean((y - scale * f) ** 2, axis=-1))
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)


def test_losses_serialize():
    loss = losses.RewardWeightedSquaredLoss(losses.AWRWeighting(beta=0.3))
    revived = keras.losses.deserialize(keras.losses.serialize(loss))
    assert revived.reward_weighting.get_config() == {"beta": 0.3, "max_weight": 20.0}
    self_loss = keras.losses.deserialize(
        keras.losses.serialize(losses.SelfSupervisedLoss(from_logits=True))
    )
    assert self_loss.from_logits is True


def test_reward_loss_needs_dict_targets():
    with pytest.raises(ValueError, match="`y_true` must be a dict"):
        losses.RewardWeightedSquaredLoss()(np.zeros((2, 3)), np.zeros((2, 3)))
