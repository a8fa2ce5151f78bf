"""Self-evolution: act or generate → score with a reward → learn → repeat."""

from keras_selfevo.evolve import meter, rewards
from keras_selfevo.evolve.environments import (
    BanditClassification,
    Environment,
    EnvironmentBase,
    MeterEnvironment,
    Observations,
    SupervisedBandit,
    VerifiableGeneration,
)
from keras_selfevo.evolve.loop import LoopGeometry, SelfEvolution

__all__ = [
    "BanditClassification",
    "Environment",
    "EnvironmentBase",
    "LoopGeometry",
    "MeterEnvironment",
    "Observations",
    "SupervisedBandit",
    "SelfEvolution",
    "VerifiableGeneration",
    "meter",
    "rewards",
]
