"""Self-evolution: act or generate → score with a reward → learn → repeat."""

from keras_selfevo.evolve import rewards
from keras_selfevo.evolve.environments import (
    BanditClassification,
    Environment,
    Observations,
    VerifiableGeneration,
)
from keras_selfevo.evolve.loop import SelfEvolution

__all__ = [
    "BanditClassification",
    "Environment",
    "Observations",
    "SelfEvolution",
    "VerifiableGeneration",
    "rewards",
]
