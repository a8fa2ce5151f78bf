import keras
import numpy as np
import pytest

from keras_selfevo import training
from keras_selfevo.training.alpha_schedules import get_alpha


def test_linear_and_cosine_values():
    linear = training.LinearAlpha(1.0, 0.2, steps=10)
    cosine = training.CosineAlpha(1.0, 0.2, steps=10)
    for step in [0, 3, 5, 10, 50]:
        progress = min(step / 10, 1.0)
        np.testing.assert_allclose(float(linear(step)), 1.0 - 0.8 * progress, rtol=1e-6)
        expected = 1.0 - 0.8 * 0.5 * (1 - np.cos(np.pi * progress))
        np.testing.assert_allclose(float(cosine(step)), expected, rtol=1e-6)


def test_schedules_serialize():
    schedule = training.CosineAlpha(0.9, 0.1, steps=7)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(revived, training.CosineAlpha)
    assert revived.get_config() == {"start": 0.9, "end": 0.1, "steps": 7}


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", True, None])
def test_alpha_must_be_in_unit_interval(bad):
    with pytest.raises(ValueError, match="`alpha` must be a float in \\[0, 1\\]"):
        get_alpha(bad)


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match="`start`"):
        training.LinearAlpha(start=2.0)
    with pytest.raises(ValueError, match="`steps` must be a positive integer"):
        training.LinearAlpha(steps=0)
