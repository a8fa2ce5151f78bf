"""SelfEvolvingModel and the schedules of its mixing weight alpha."""

from keras_selfevo.training.alpha_schedules import AlphaSchedule, CosineAlpha, LinearAlpha
from keras_selfevo.training.self_evolving_model import (
    TARGET_KEYS,
    FunctionalSelfEvolvingModel,
    SelfEvolvingModel,
)

__all__ = [
    "AlphaSchedule",
    "CosineAlpha",
    "FunctionalSelfEvolvingModel",
    "LinearAlpha",
    "SelfEvolvingModel",
    "TARGET_KEYS",
]
