"""Self-evolution: act or generate → score with a reward → learn → repeat."""

from keras_selfevo.evolve import rewards
from keras_selfevo.evolve.environments import (
    BanditClassification,
    Environment,
    EnvironmentBase,
    Observations,
    SupervisedBandit,
    VerifiableGeneration,
)
from keras_selfevo.evolve.loop import SelfEvolution

__all__ = [
    "BanditClassification",
    "Environment",
    "EnvironmentBase",
    "Observations",
    "SupervisedBandit",
    "SelfEvolution",
    "VerifiableGeneration",
    "rewards",
]
