import keras
import numpy as np
import pytest

from keras_selfevo import layers, testing


def test_layer_helper_checks():
    data = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
    testing.run_layer_test(
        layers.RandomMasking, {"rate": 0.3, "mask_value": 0.5, "seed": 7}, data,
        expected_output_shape=((3, 28, 28, 1), (3, 28, 28, 1)),
        expected_num_trainable_weights=0, fresh_process=False,  # fresh: test_fresh_reload.py
    )


def test_training_masks_about_rate_and_writes_mask_value():
    x = np.ones((64, 32, 32), np.float32)
    corrupted, mask = layers.RandomMasking(rate=0.25, mask_value=-1.0, seed=1)(x, training=True)
    corrupted, mask = np.asarray(corrupted), np.asarray(mask)
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert abs(mask.mean() - 0.25) < 0.01  # 65k Bernoulli draws: std of the mean ~0.002
    np.testing.assert_array_equal(corrupted, np.where(mask == 1, -1.0, 1.0))


def test_inference_passes_input_through():
    x = np.random.default_rng(1).uniform(size=(4, 10)).astype(np.float32)
    corrupted, mask = layers.RandomMasking(rate=0.5)(x, training=False)
    np.testing.assert_array_equal(np.asarray(corrupted), x)
    assert not np.asarray(mask).any()


def test_masks_differ_between_calls_and_rate_is_checked():
    layer = layers.RandomMasking(rate=0.5, seed=3)
    x = np.ones((8, 16), np.float32)
    first = np.asarray(layer(x, training=True)[1])
    second = np.asarray(layer(x, training=True)[1])
    assert (first != second).any()
    with pytest.raises(ValueError, match="`rate` must be a float in \\[0, 1\\)"):
        layers.RandomMasking(rate=1.0)
    assert isinstance(keras.saving.get_registered_object("keras_selfevo>RandomMasking"), type)
