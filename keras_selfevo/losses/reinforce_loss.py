"""The kinds of reinforce loss ``L_reinforce``: how the ``"policy"`` output meets a scored action.

:func:`get_reinforce_loss` resolves a name (or an instance) once, at ``compile``; the train
step asks the object for the batch's reward-weighted sum and what it is a mean over.

- :class:`SquaredReinforceLoss` (``"squared"``, the default): ``w(r_i) * mean((y_i - a_i *
  f(x_i))^2)`` per sample, a mean over the global batch.
"""

from __future__ import annotations

import abc
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

    @abc.abstractmethod
    def sums(self, target: tf.Tensor, output: tf.Tensor, weights: tf.Tensor,
             sample_weight: tf.Tensor | None,
             action: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The replica's weighted sum, and what it counts (``None``: its examples).

        Args:
            target: ``y["policy"]``.
            output: The ``"policy"`` output.
            weights: ``w(r)`` per example (held constant).
            sample_weight: ``fit``'s per-example weight, or None.
            action: ``y["action"]``, an optional scale per example.

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

    def sums(self, target, output, weights, sample_weight, action):
        errors = squared_error_per_sample(target, output, action)
        weighted = weights * errors if sample_weight is None else (
            weights * errors * sample_weight)
        return tf.reduce_sum(weighted), None


REINFORCE_LOSS_KINDS: dict[str, type[ReinforceLoss]] = {
    SquaredReinforceLoss.name: SquaredReinforceLoss,
}
# The names SelfEvolvingModel.compile accepts.
REINFORCE_LOSSES = tuple(REINFORCE_LOSS_KINDS)


def get_reinforce_loss(identifier: str | ReinforceLoss) -> ReinforceLoss:
    """The reinforce-loss object for a name (``"squared"``) or an instance (returned as is).

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(identifier, ReinforceLoss):
        return identifier
    return _checks.lookup(REINFORCE_LOSS_KINDS, identifier, "reinforce_loss",
                          " or a ReinforceLoss")()
