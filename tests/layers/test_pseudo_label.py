import numpy as np
import pytest

from keras_selfevo import layers, testing


def test_layer_helper_checks():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(5), size=6).astype(np.float32)
    testing.run_layer_test(layers.PseudoLabel, {"threshold": 0.4}, probabilities,
                           expected_output_shape=((6, 5), (6, 5)),
                           expected_num_trainable_weights=0, fresh_process=False)


def test_matches_numpy_and_checks_its_threshold():
    probabilities = np.array([[0.1, 0.85, 0.05], [0.4, 0.3, 0.3], [0.0, 0.1, 0.9]], np.float32)
    target, mask = layers.PseudoLabel(0.85)(probabilities)
    np.testing.assert_array_equal(target, np.eye(3, dtype=np.float32)[[1, 0, 2]])
    np.testing.assert_array_equal(mask, np.array([[1.0] * 3, [0.0] * 3, [1.0] * 3]))
    for bad in (0.0, 1.5, "high"):
        with pytest.raises(ValueError, match="`threshold` must be a float in"):
            layers.PseudoLabel(bad)
