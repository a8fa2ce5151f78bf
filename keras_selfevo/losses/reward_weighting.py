"""Reward weightings ``w(r)`` for the reward-weighted squared loss.

A weighting maps a replica's rewards to non-negative per-sample weights. Batch statistics
(mean, std, min, quantile) are taken over ``batch_rewards``: inside
:class:`~keras_selfevo.SelfEvolvingModel` these are the rewards of the **global** batch,
gathered from all replicas, so a step on several replicas equals a step on one device.
Weights are never differentiated.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import keras
import tensorflow as tf
import tensorflow_probability as tfp

_EPSILON = 1e-8


class RewardWeighting(abc.ABC):
    """Base class: ``weighting(rewards, batch_rewards=None) -> weights``.

    Subclasses implement :meth:`weights`; they are serializable Keras objects.
    """

    #: Whether rewards must be non-negative (checked before training).
    requires_non_negative = False

    def __call__(self, rewards: tf.Tensor, batch_rewards: tf.Tensor | None = None) -> tf.Tensor:
        """Weights for ``rewards`` (1-D), with statistics over ``batch_rewards``."""
        rewards = tf.cast(rewards, tf.float32)
        batch_rewards = rewards if batch_rewards is None else tf.cast(batch_rewards, tf.float32)
        return tf.stop_gradient(self.weights(rewards, batch_rewards))

    @abc.abstractmethod
    def weights(self, rewards: tf.Tensor, batch_rewards: tf.Tensor) -> tf.Tensor:
        """Compute the weights; ``batch_rewards`` holds the whole batch's rewards."""

    def get_config(self) -> dict:
        """Constructor arguments."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> RewardWeighting:
        """Rebuild from :meth:`get_config`."""
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class RawWeighting(RewardWeighting):
    """``w = r``: rewards are used as weights as they are; they must be ≥ 0."""

    requires_non_negative = True

    def weights(self, rewards: tf.Tensor, batch_rewards: tf.Tensor) -> tf.Tensor:
        return rewards


@keras.saving.register_keras_serializable(package="keras_selfevo")
class NormalizedWeighting(RewardWeighting):
    """Standardised rewards shifted so that the batch minimum gets weight 0.

    ``w = (r - mean R) / std R - min_R((R - mean R) / std R) = (r - min R) / std R``.
    """

    def weights(self, rewards: tf.Tensor, batch_rewards: tf.Tensor) -> tf.Tensor:
        std = tf.math.reduce_std(batch_rewards)
        return (rewards - tf.reduce_min(batch_rewards)) / (std + _EPSILON)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class AWRWeighting(RewardWeighting):
    """Advantage-weighted regression: ``w = min(exp((r - mean R) / (beta * std R)), max_weight)``.

    Args:
        beta: Temperature; smaller values concentrate the weight on the best samples.
        max_weight: Cap on a weight (20 in the AWR reference code).
    """

    def __init__(self, beta: float = 1.0, max_weight: float = 20.0):
        if not beta > 0:
            raise ValueError(f"`beta` must be > 0, got {beta!r}.")
        if not max_weight > 0:
            raise ValueError(f"`max_weight` must be > 0, got {max_weight!r}.")
        self.beta = float(beta)
        self.max_weight = float(max_weight)

    def weights(self, rewards: tf.Tensor, batch_rewards: tf.Tensor) -> tf.Tensor:
        mean = tf.reduce_mean(batch_rewards)
        std = tf.math.reduce_std(batch_rewards)
        advantage = (rewards - mean) / (self.beta * std + _EPSILON)
        return tf.minimum(tf.exp(tf.minimum(advantage, 80.0)), self.max_weight)

    def get_config(self) -> dict:
        return {"beta": self.beta, "max_weight": self.max_weight}


@keras.saving.register_keras_serializable(package="keras_selfevo")
class FilterWeighting(RewardWeighting):
    """Keep the good samples: ``w = 1[r >= threshold]`` (ReST / RAFT style filtering).

    Args:
        threshold: A fixed reward threshold.
        quantile: Instead of ``threshold``, the batch quantile in [0, 1] (linear
            interpolation, as ``numpy.quantile``); 0.5 keeps the better half.
    """

    def __init__(self, threshold: float | None = None, quantile: float | None = None):
        if (threshold is None) == (quantile is None):
            raise ValueError("Give exactly one of `threshold` and `quantile` to FilterWeighting.")
        if quantile is not None and not 0.0 <= quantile <= 1.0:
            raise ValueError(f"`quantile` must be in [0, 1], got {quantile!r}.")
        self.threshold = None if threshold is None else float(threshold)
        self.quantile = None if quantile is None else float(quantile)

    def weights(self, rewards: tf.Tensor, batch_rewards: tf.Tensor) -> tf.Tensor:
        if self.quantile is None:
            threshold = tf.constant(self.threshold, tf.float32)
        else:
            threshold = tfp.stats.percentile(
                batch_rewards, 100.0 * self.quantile, interpolation="linear"
            )
        return tf.cast(rewards >= threshold, tf.float32)

    def get_config(self) -> dict:
        return {"threshold": self.threshold, "quantile": self.quantile}


@keras.saving.register_keras_serializable(package="keras_selfevo")
class CallableWeighting(RewardWeighting):
    """Wraps a user function ``r -> w`` applied to this replica's rewards."""

    def __init__(self, fn: Callable[[tf.Tensor], tf.Tensor]):
        if not callable(fn):
            raise ValueError(f"`fn` must be callable, got {fn!r}.")
        self.fn = fn

    def weights(self, rewards: tf.Tensor, batch_rewards: tf.Tensor) -> tf.Tensor:
        return tf.reshape(tf.cast(self.fn(rewards), tf.float32), tf.shape(rewards))

    def get_config(self) -> dict:
        return {"fn": keras.saving.serialize_keras_object(self.fn)}

    @classmethod
    def from_config(cls, config: dict) -> CallableWeighting:
        return cls(keras.saving.deserialize_keras_object(config["fn"]))


WEIGHTINGS = {
    "raw": RawWeighting,
    "normalized": NormalizedWeighting,
    "awr": AWRWeighting,
    "filter": lambda: FilterWeighting(quantile=0.5),
}


def get_reward_weighting(
    identifier: str | RewardWeighting | Callable[[tf.Tensor], tf.Tensor] | dict,
) -> RewardWeighting:
    """Resolve ``"raw"``, ``"normalized"``, ``"awr"``, ``"filter"``, an instance or a callable.

    ``"filter"`` keeps the samples at or above the batch median; use
    ``FilterWeighting(threshold=...)`` or ``FilterWeighting(quantile=...)`` for others.
    """
    if isinstance(identifier, RewardWeighting):
        return identifier
    if isinstance(identifier, str):
        if identifier not in WEIGHTINGS:
            raise ValueError(
                f"Unknown `reward_weighting`={identifier!r}; expected one of "
                f"{sorted(WEIGHTINGS)}, a RewardWeighting or a callable r -> w."
            )
        return WEIGHTINGS[identifier]()
    if isinstance(identifier, dict):
        weighting = keras.saving.deserialize_keras_object(identifier)
        if isinstance(weighting, RewardWeighting):
            return weighting
    if callable(identifier):
        return CallableWeighting(identifier)
    raise ValueError(
        f"Unknown `reward_weighting`={identifier!r}; expected one of {sorted(WEIGHTINGS)}, "
        "a RewardWeighting or a callable r -> w."
    )
