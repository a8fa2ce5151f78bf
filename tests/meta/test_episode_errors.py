"""Episodes and adapt() with mismatched examples and targets: a clear error, no deep one."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse


def _learner():
    return kse.MetaLearner(kse.zoo.build("sinusoid_mlp", seed=0), inner_lr=0.01)


def test_support_x_and_y_of_different_lengths():
    learner = _learner()
    learner.compile(optimizer=keras.optimizers.Adam(1e-3))
    support = (np.zeros((2, 5, 1), np.float32), np.zeros((2, 3, 1), np.float32))
    query = (np.zeros((2, 4, 1), np.float32), np.zeros((2, 4, 1), np.float32))
    data = tf.data.Dataset.from_tensors((support, query))
    with pytest.raises(ValueError, match="support_x holds 5 examples per task but support_y "
                                         "holds 3"):
        learner.fit(data, verbose=0)


def test_adapt_with_mismatched_lengths():
    with pytest.raises(ValueError, match="`support_x` holds 5 examples but `support_y` 3"):
        _learner().adapt(np.zeros((5, 1), np.float32), np.zeros((3, 1), np.float32))


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), -1.0])
def test_non_finite_inner_rates(rate):
    with pytest.raises(ValueError, match="`inner_lr` must be a number > 0"):
        kse.MetaLearner(kse.zoo.build("sinusoid_mlp", seed=0), inner_lr=rate)
