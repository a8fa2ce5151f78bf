import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_selfevo import losses
from tests.references import numpy_weights

REWARDS = np.array([0.3, -1.2, 2.5, 0.0, 0.7, 1.1, -0.4, 3.0], np.float32)


@pytest.mark.parametrize("name", ["raw", "normalized", "awr", "filter"])
def test_named_weightings_match_numpy(name):
    weighting = losses.get_reward_weighting(name)
    rewards = np.abs(REWARDS) if name == "raw" else REWARDS
    np.testing.assert_allclose(weighting(rewards).numpy(), numpy_weights(name, rewards),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["normalized", "awr", "filter"])
def test_batch_statistics_come_from_batch_rewards(name):
    local, batch = REWARDS[:3], REWARDS
    weights = losses.get_reward_weighting(name)(local, batch).numpy()
    np.testing.assert_allclose(weights, numpy_weights(name, local, batch), rtol=1e-5, atol=1e-6)


def test_normalized_weights_are_non_negative_and_zero_at_the_minimum():
    weights = losses.NormalizedWeighting()(REWARDS).numpy()
    assert weights.min() == 0.0 and weights[np.argmin(REWARDS)] == 0.0


def test_awr_cap_and_temperature():
    rewards = np.array([0.0, 0.0, 0.0, 10.0], np.float32)
    np.testing.assert_allclose(losses.AWRWeighting(beta=0.1)(rewards).numpy()[-1], 20.0)
    capped = losses.AWRWeighting(beta=0.1, max_weight=5.0)(rewards).numpy()
    assert capped.max() == pytest.approx(5.0)
    # Equal rewards: zero advantage, weight 1 (no division by a zero std).
    np.testing.assert_allclose(losses.AWRWeighting()(np.ones(4, np.float32)).numpy(), 1.0)


def test_filter_with_fixed_threshold_and_quantile():
    fixed = losses.FilterWeighting(threshold=1.0)(REWARDS).numpy()
    np.testing.assert_array_equal(fixed, (REWARDS >= 1.0).astype(np.float32))
    top = losses.FilterWeighting(quantile=0.75)(REWARDS).numpy()
    np.testing.assert_array_equal(top, (REWARDS >= np.quantile(REWARDS, 0.75)).astype(np.float32))


def test_callable_weighting_and_no_gradient():
    weighting = losses.get_reward_weighting(lambda r: 2.0 * r)
    rewards = tf.Variable(REWARDS)
    with tf.GradientTape() as tape:
        weights = weighting(rewards)
    np.testing.assert_allclose(weights.numpy(), 2.0 * REWARDS)
    assert tape.gradient(weights, rewards) is None


@pytest.mark.parametrize(
    "weighting",
    [losses.RawWeighting(), losses.NormalizedWeighting(), losses.AWRWeighting(0.5, 7.0),
     losses.FilterWeighting(quantile=0.25), losses.FilterWeighting(threshold=-1.0)],
)
def test_weightings_serialize(weighting):
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(weighting))
    assert type(revived) is type(weighting) and revived.get_config() == weighting.get_config()
    np.testing.assert_allclose(revived(REWARDS).numpy(), weighting(REWARDS).numpy())


def test_bad_weighting_arguments():
    with pytest.raises(ValueError, match="Unknown `reward_weighting`='softmax'"):
        losses.get_reward_weighting("softmax")
    with pytest.raises(ValueError, match="Unknown `reward_weighting`"):
        losses.get_reward_weighting(3)
    with pytest.raises(ValueError, match="`beta` must be > 0"):
        losses.AWRWeighting(beta=0)
    with pytest.raises(ValueError, match="exactly one of `threshold` and `quantile`"):
        losses.FilterWeighting()
    with pytest.raises(ValueError, match="`quantile` must be in"):
        losses.FilterWeighting(quantile=1.5)
