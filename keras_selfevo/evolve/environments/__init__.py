"""Environments of the self-evolution loop: observe → act → reward (one per module).

:mod:`~keras_selfevo.evolve.environments.base` holds the protocol and the defaults every
environment inherits; the bandits, verifiable generation and the meter environment follow it.
"""

from keras_selfevo.evolve.environments.bandit import BanditClassification, SupervisedBandit
from keras_selfevo.evolve.environments.base import (
    LOOP_METHODS,
    Environment,
    EnvironmentBase,
    Observations,
)
from keras_selfevo.evolve.environments.meter_environment import MeterEnvironment
from keras_selfevo.evolve.environments.verifiable_generation import VerifiableGeneration

__all__ = [
    "LOOP_METHODS",
    "BanditClassification",
    "Environment",
    "EnvironmentBase",
    "MeterEnvironment",
    "Observations",
    "SupervisedBandit",
    "VerifiableGeneration",
]
