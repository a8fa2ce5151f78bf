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

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.identifiers import as_instance
from keras_selfevo._internal.lazy import tfp

_EPSILON = 1e-8


class RewardWeighting(abc.ABC):
    """Base class: ``weighting(rewards, batch_rewards=None) -> weights``.

    Subclasses implement :meth:`weights`; they are serializable Keras objects.
    """

    #: Whether rewards must be non-negative (checked before training).
    requires_non_negative = False
    #: Samples per group for weightings that compare a group's samples (``None``: none).
    group_size: int | None = None

    def __call__(self, rewards: tf.Tensor, batch_rewards: tf.Tensor | None = None) -> tf.Tensor:
        """Weights for ``rewards`` (1-D), with statistics over ``batch_rewards``."""
        rewards = tf.cast(rewards, tf.float32)
        batch_rewards = rewards if batch_rewards is None else tf.cast(batch_rewards, tf.float32)
        return tf.stop_gradient(self.weights(rewards, batch_rewards))

    def batch_checks(self, rewards: tf.Tensor) -> list[tuple[tf.Tensor, str]]:
        """``(condition, message)`` pairs a batch's rewards must satisfy (none by default)."""
        return []

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


BASELINES = ("mean", "leave_one_out")
SCALES = ("group_std", "none")


@keras.saving.register_keras_serializable(package="keras_selfevo")
class GroupRelativeWeighting(RewardWeighting):
    """Group-relative advantages (GRPO, RLOO): each sample against its own group.

    A group is ``group_size`` consecutive samples of the batch: the samples drawn for one
    observation (``SelfEvolution``'s ``samples_per_observation``, which keeps them
    together). The weight of sample ``i`` of group ``g`` is its advantage:

    - ``baseline="mean"``: ``r_i - mean(r_g)``;
    - ``baseline="leave_one_out"`` (RLOO): ``r_i - mean(r_g without r_i)``
      ``= G / (G - 1) * (r_i - mean(r_g))``;

    divided, with ``scale="group_std"`` (GRPO), by the group's sample standard deviation
    plus ``epsilon`` (as TRL's GRPO: ``std`` with Bessel's correction, ``epsilon=1e-4``).
    A group whose rewards are all equal gets weights 0, never NaN.

    Negative weights push the policy away from a sample. With the reward-weighted
    *squared* loss that push is bounded: ``||y - f(x)||^2`` of a one-hot target and a
    softmax output is at most 2, so a negative weight lowers the loss by at most ``2|w|``
    per sample, where a log-likelihood term would fall without bound.

    Groups are taken within each replica's batch, so a batch (and each replica's share of
    it) must hold whole groups; that is checked on every batch. A group never spans two
    replicas, so a step on several replicas equals a step on one device.

    Args:
        group_size: Samples per group, ≥ 2; ``None`` lets ``SelfEvolution`` set it to its
            ``samples_per_observation`` (``fit`` needs it set).
        baseline: ``"mean"`` or ``"leave_one_out"``.
        scale: ``"group_std"`` or ``"none"``.
        epsilon: Added to the standard deviation.
    """

    def __init__(self, group_size: int | None = None, baseline: str = "mean",
                 scale: str = "group_std", epsilon: float = 1e-4):
        self.group_size = _checks.int_at_least(
            group_size, "group_size", 2, "a group needs at least two samples to compare",
            allow_none=True)
        self.baseline = _checks.one_of(baseline, "baseline", BASELINES)
        self.scale = _checks.one_of(scale, "scale", SCALES)
        self.epsilon = _checks.positive_number(epsilon, "epsilon")

    def with_group_size(self, group_size: int) -> GroupRelativeWeighting:
        """The same weighting for groups of ``group_size``."""
        return GroupRelativeWeighting(group_size, self.baseline, self.scale, self.epsilon)

    def batch_checks(self, rewards: tf.Tensor) -> list[tuple[tf.Tensor, str]]:
        """The batch must hold whole groups: ``(condition, message)`` pairs for the step."""
        size = self._size()
        return [(tf.equal(tf.size(rewards) % size, 0),
                 f"`y[\"reward\"]`: the batch (each replica's share of it, with a strategy) "
                 f"must hold whole groups of {size} samples for group-relative weighting; "
                 "keep a group's samples together and use a batch size that is a multiple "
                 f"of {size} (times the number of replicas).")]

    def _size(self) -> int:
        if self.group_size is None:
            raise ValueError("GroupRelativeWeighting needs `group_size` (the samples per "
                             "observation) to train with fit; SelfEvolution sets it from "
                             "its `samples_per_observation`.")
        return self.group_size

    def weights(self, rewards: tf.Tensor, batch_rewards: tf.Tensor) -> tf.Tensor:
        size = self._size()
        count = tf.size(rewards)
        whole = count - count % size
        groups = tf.reshape(rewards[:whole], [-1, size])
        deviation = groups - tf.reduce_mean(groups, axis=1, keepdims=True)
        centred = deviation
        if self.baseline == "leave_one_out":
            centred = deviation * (size / (size - 1))
        if self.scale == "group_std":
            variance = tf.reduce_sum(tf.square(deviation), axis=1, keepdims=True) / (size - 1)
            centred = centred / (tf.sqrt(variance) + self.epsilon)
        # A batch that splits a group fails its input check; until that check stops the
        # step, the samples of the broken group weigh NaN, so the step applies no update.
        broken = tf.fill([count - whole], tf.constant(float("nan"), rewards.dtype))
        return tf.concat([tf.reshape(centred, [-1]), broken], axis=0)

    def __call__(self, rewards: tf.Tensor, batch_rewards: tf.Tensor | None = None) -> tf.Tensor:
        """Weights from this replica's own groups (``batch_rewards`` is not needed)."""
        return super().__call__(rewards, rewards)

    def get_config(self) -> dict:
        return {"group_size": self.group_size, "baseline": self.baseline, "scale": self.scale,
                "epsilon": self.epsilon}


WEIGHTINGS = {
    "raw": RawWeighting,
    "normalized": NormalizedWeighting,
    "awr": AWRWeighting,
    "filter": lambda: FilterWeighting(quantile=0.5),
    "grpo": lambda: GroupRelativeWeighting(baseline="mean", scale="group_std"),
    "rloo": lambda: GroupRelativeWeighting(baseline="leave_one_out", scale="none"),
}


def get_reward_weighting(
    identifier: str | RewardWeighting | Callable[[tf.Tensor], tf.Tensor] | dict,
) -> RewardWeighting:
    """Resolve ``"raw"``, ``"normalized"``, ``"awr"``, ``"filter"``, an instance or a callable.

    ``"filter"`` keeps the samples at or above the batch median; use
    ``FilterWeighting(threshold=...)`` or ``FilterWeighting(quantile=...)`` for others.
    ``"grpo"`` and ``"rloo"`` are :class:`GroupRelativeWeighting` with the group's mean and
    standard deviation, and with the leave-one-out baseline; their group size is
    ``SelfEvolution``'s ``samples_per_observation``.
    """
    weighting = as_instance(identifier, RewardWeighting, CallableWeighting)
    if weighting is not None:
        return weighting
    return _checks.lookup(WEIGHTINGS, identifier, "reward_weighting",
                          ", a RewardWeighting or a callable r -> w")()
