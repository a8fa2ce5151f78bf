"""The kinds of reinforce loss ``L_reinforce``: how the ``"policy"`` output meets a scored action.

:func:`get_reinforce_loss` resolves a name (or an instance) once, at ``compile``; the train
step asks the object for the batch's reward-weighted sum and what it is a mean over.

- :class:`SquaredReinforceLoss` (``"squared"``, the default): ``w(r_i) * mean((y_i - a_i *
  f(x_i))^2)`` per sample, a mean over the global batch.
- :class:`LogLikelihoodReinforceLoss` (``"log_likelihood"``): ``w(r_i) * -log pi(a_i | x_i)``,
  the policy gradient of REINFORCE and GRPO for a categorical policy (a classifier's classes,
  or a language model's sampled tokens); with reward 1 it is the cross-entropy.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.losses.reward_weighted_squared_loss import squared_error_per_sample


class ReinforceLoss(abc.ABC):
    """Base of the reinforce-loss kinds (see the module docstring)."""

    #: The name ``compile(reinforce_loss=...)`` takes and ``.keras`` files keep.
    name = ""

    def check_target(self, target: Any, output: Any) -> None:
        """``y["policy"]`` must have the ``"policy"`` output's per-example shape."""
        want, got = getattr(output, "shape", None), getattr(target, "shape", None)
        if want is None or got is None or len(want) != len(got):
            if want is not None and got is not None:
                raise ValueError(f'`y["policy"]` has shape {tuple(got)} but the "policy" '
                                 f"output has shape {tuple(want)}: one target per output "
                                 "element is expected.")
            return
        for a, b in zip(tuple(want)[1:], tuple(got)[1:]):
            if a is not None and b is not None and a != b:
                raise ValueError(f'`y["policy"]` has shape {tuple(got)} but the "policy" '
                                 f"output has shape {tuple(want)} (batch first).")

    #: ``y`` keys besides ``"policy"`` and ``"reward"`` that this kind reads.
    target_keys: tuple[str, ...] = ()

    #: The sampling temperature the actions are scored at (1: the output as is).
    temperature: float = 1.0

    @abc.abstractmethod
    def sums(self, y: Mapping[str, tf.Tensor], output: tf.Tensor, weights: tf.Tensor,
             sample_weight: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The replica's weighted sum, and what it counts (``None``: its examples).

        Args:
            y: The batch's targets: ``y["policy"]`` and the keys of :attr:`target_keys`.
            output: The ``"policy"`` output.
            weights: ``w(r)`` per example (held constant).
            sample_weight: ``fit``'s per-example weight, or None.

        Returns:
            The local sum, and the local count it is a mean over once summed across
            replicas; ``None`` makes it a mean over the global batch.
        """

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> ReinforceLoss:
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class SquaredReinforceLoss(ReinforceLoss):
    """The reward-weighted squared error ``w(r_i) * mean((y_i - a_i * f(x_i))^2)``.

    The squared error of a sample is averaged over its output elements; ``a_i`` is the
    optional per-sample action scale ``y["action"]`` (1 when absent).
    """

    name = "squared"
    target_keys = ("action",)

    def sums(self, y, output, weights, sample_weight):
        errors = squared_error_per_sample(y["policy"], output, y.get("action"))
        weighted = weights * errors if sample_weight is None else (
            weights * errors * sample_weight)
        return tf.reduce_sum(weighted), None


NORMALIZATIONS = ("sequence", "token")


@keras.saving.register_keras_serializable(package="keras_selfevo")
class LogLikelihoodReinforceLoss(ReinforceLoss):
    """The reward-weighted log-likelihood ``w(r_i) * -log pi(a_i | x_i)``.

    ``y["policy"]`` holds the taken action as a one-hot row (a class; for a sequence
    ``[batch, time, vocab]``, the sampled token at each position) and ``-log pi`` is
    ``keras.ops.categorical_crossentropy`` of it against the ``"policy"`` output
    (probabilities, or logits with ``from_logits``): with reward 1 and ``"raw"`` weighting
    the term is ``keras.losses.CategoricalCrossentropy``.

    For a sequence, ``y["policy_mask"]`` (``[batch, time]``, optional) marks the positions
    whose token the policy sampled: a prompt, padding after the end and rows of text the
    model did not write (0) are left out. ``normalize`` says what the term is a mean over:

    - ``"sequence"``: each sequence's mean over its counted positions, then the mean over the
      global batch (GRPO as published);
    - ``"token"``: the sum over every counted position of the global batch divided by their
      number (DAPO, Dr. GRPO: a long sequence is not weighed down per token).

    For a classifier (``[batch, classes]``) both are the mean over the global batch.

    With ``clip_epsilon``, the term is PPO's clipped objective
    ``-min(rho * A, clip(rho, 1 - eps, 1 + eps) * A)`` with ``A = w(r)`` and
    ``rho = pi(a | x) / pi_old(a | x)`` against the log-probabilities ``y["old_log_prob"]``
    recorded when the samples were drawn (``[batch]`` or ``[batch, time]``): for loops that
    update more than once on one batch of samples (``SelfEvolution`` records them). At the
    sampling weights (``rho`` = 1) its gradient is the plain term's.

    With ``temperature`` ``T``, ``pi`` is the policy sampled at that temperature,
    ``softmax(z / T)`` for logits ``z`` (from probabilities ``p``: ``softmax(log p / T)``):
    the policy gradient of actions drawn at ``T``, as TRL's GRPO computes it. At 1 (the
    default) ``pi`` is the output itself.

    Args:
        from_logits: The ``"policy"`` output holds logits, not probabilities.
        normalize: ``"sequence"`` or ``"token"``.
        clip_epsilon: PPO's clip range (``None``: the plain policy gradient).
        temperature: The temperature the actions were sampled at (> 0).
    """

    name = "log_likelihood"

    def __init__(self, from_logits: bool = False, normalize: str = "sequence",
                 clip_epsilon: float | None = None, temperature: float = 1.0):
        self.from_logits = bool(from_logits)
        self.normalize = _checks.one_of(normalize, "normalize", NORMALIZATIONS)
        self.clip_epsilon = _checks.number(clip_epsilon, "clip_epsilon", 0.0, low_open=True,
                                           allow_none=True)
        self.temperature = float(_checks.number(temperature, "temperature", 0.0,
                                                low_open=True))
        self.target_keys = ("policy_mask",) + (("old_log_prob",) if clip_epsilon else ())

    def negative_log_likelihood(self, target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
        """``-log pi(a)`` per example (and position): ``[batch]`` or ``[batch, time]``."""
        target, output = tf.cast(target, tf.float32), tf.cast(output, tf.float32)
        if self.temperature == 1.0:
            return keras.ops.categorical_crossentropy(target, output,
                                                      from_logits=self.from_logits)
        scores = output if self.from_logits else tf.math.log(
            tf.clip_by_value(output, keras.config.epsilon(), 1.0))
        return keras.ops.categorical_crossentropy(target, scores / self.temperature,
                                                  from_logits=True)

    def sums(self, y, output, weights, sample_weight):
        nll = self.negative_log_likelihood(y["policy"], output)
        rank = nll.shape.rank
        per_row = (lambda v: tf.reshape(v, [-1] + [1] * (rank - 1)))  # noqa: E731
        if self.clip_epsilon:
            ratio = tf.exp(-nll - tf.cast(y["old_log_prob"], tf.float32))
            advantage = per_row(weights)
            clipped = tf.clip_by_value(ratio, 1.0 - self.clip_epsilon, 1.0 + self.clip_epsilon)
            terms = -tf.minimum(ratio * advantage, clipped * advantage)
        else:
            terms = per_row(weights) * nll
        if sample_weight is not None:
            terms = terms * per_row(sample_weight)
        if rank == 1:
            return tf.reduce_sum(terms), None
        mask = y.get("policy_mask")
        mask = tf.ones_like(nll) if mask is None else tf.cast(mask, tf.float32)
        counted = tf.reduce_sum(mask, axis=list(range(1, rank)))
        masked = tf.reduce_sum(terms * mask, axis=list(range(1, rank)))
        if self.normalize == "token":
            return tf.reduce_sum(masked), tf.reduce_sum(counted)
        return tf.reduce_sum(masked / tf.maximum(counted, 1.0)), None

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits, "normalize": self.normalize,
                "clip_epsilon": self.clip_epsilon, "temperature": self.temperature}


REINFORCE_LOSS_KINDS: dict[str, type[ReinforceLoss]] = {
    SquaredReinforceLoss.name: SquaredReinforceLoss,
    LogLikelihoodReinforceLoss.name: LogLikelihoodReinforceLoss,
}
# The names SelfEvolvingModel.compile accepts.
REINFORCE_LOSSES = tuple(REINFORCE_LOSS_KINDS)


def get_reinforce_loss(identifier: str | ReinforceLoss) -> ReinforceLoss:
    """The reinforce-loss object for a name or an instance (returned as is).

    Names: ``"squared"``, ``"log_likelihood"`` (with its defaults; build a
    :class:`LogLikelihoodReinforceLoss` for others).

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(identifier, ReinforceLoss):
        return identifier
    return _checks.lookup(REINFORCE_LOSS_KINDS, identifier, "reinforce_loss",
                          " or a ReinforceLoss")()
