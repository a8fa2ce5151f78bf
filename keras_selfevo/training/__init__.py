"""SelfEvolvingModel and the schedules of its mixing weight alpha."""

from keras_selfevo.training.alpha_schedules import AlphaSchedule, CosineAlpha, LinearAlpha
from keras_selfevo.training.input_checks import TARGET_KEYS
from keras_selfevo.training.non_finite import NonFiniteWeightsError, StopOnNonFinite
from keras_selfevo.training.self_evolving_model import (
    FunctionalSelfEvolvingModel,
    SelfEvolvingModel,
)

__all__ = [
    "AlphaSchedule",
    "CosineAlpha",
    "FunctionalSelfEvolvingModel",
    "LinearAlpha",
    "NonFiniteWeightsError",
    "SelfEvolvingModel",
    "StopOnNonFinite",
    "TARGET_KEYS",
]
