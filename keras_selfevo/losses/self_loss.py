"""The kinds of self-loss ``L_self``: what each scores, which positions count, what it checks.

:func:`get_self_loss` resolves a name (or an instance) once, at ``compile``; the train step
then asks the object for its element-wise loss and valid positions, and the input checks ask
it for its target checks. Two kinds:

- :class:`BinaryCrossentropySelfLoss` (``"binary_crossentropy"``, images): targets in [0, 1]
  of the ``"self"`` output's shape, scored element-wise; a position is one example's row of
  the last axis (its elements averaged). Integer token ids are scored against their one-hot.
- :class:`NextTokenSelfLoss` (``"sparse_categorical_crossentropy"``, language): integer
  targets ``[batch, time]`` (the next token ids) against scores ``[batch, time, vocab]``; a
  position is one target token, and ``ignore_class`` tokens (padding) do not count.
- :class:`SquaredErrorSelfLoss` (``"mean_squared_error"``, tables): real-valued targets of
  the ``"self"`` output's shape, e.g. masked features to reconstruct.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks


def binary_crossentropy_elements(
    target: tf.Tensor, output: tf.Tensor, from_logits: bool = False
) -> tf.Tensor:
    """Element-wise binary cross-entropy in float32 (no reduction), as Keras computes it."""
    return keras.ops.binary_crossentropy(
        tf.cast(target, tf.float32), tf.cast(output, tf.float32), from_logits=from_logits
    )


def sparse_categorical_elements(
    target: tf.Tensor, output: tf.Tensor, from_logits: bool = True
) -> tf.Tensor:
    """Per-position ``-log p(target)`` in float32: ids ``[batch, ...]``, scores ``[..., vocab]``."""
    return keras.ops.sparse_categorical_crossentropy(
        tf.cast(target, tf.int32), tf.cast(output, tf.float32), from_logits=from_logits
    )


def is_token_target(target: Any, output_rank: int | None) -> bool:
    """Integer ids with one axis fewer than the scores (a language model's self target)."""
    return (tf.as_dtype(target.dtype).is_integer and output_rank is not None
            and target.shape.rank == output_rank - 1)


class SelfLossTerms(NamedTuple):
    """One batch's self-loss, before any reduction.

    Attributes:
        elements: The loss of every scored element.
        valid: 1 where an element counts, 0 where it does not (``None``: all count).
        per_position: Elements per position (the mean over them is a position's loss).
    """

    elements: tf.Tensor
    valid: tf.Tensor | None
    per_position: tf.Tensor


class SelfLoss(abc.ABC):
    """Base of the self-loss kinds (see the module docstring).

    Args:
        from_logits: The ``"self"`` output holds logits, not probabilities.
        ignore_class: A target id that does not count (the next-token loss only).
    """

    #: The name ``compile(self_loss=...)`` takes and ``.keras`` files keep.
    name = ""

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None):
        self.from_logits = bool(from_logits)
        if ignore_class is not None:
            _checks.non_negative_int(ignore_class, "self_ignore_class")
        self.ignore_class = ignore_class

    def takes_token_ids(self, target: tf.Tensor, output_rank: int | None) -> bool:
        """Whether ``target`` is read as token ids (one axis fewer than the output)."""
        return is_token_target(target, output_rank)

    def check_shape(self, target: tf.Tensor, output: tf.Tensor, source: str) -> None:
        """Raise ``ValueError`` when the static shapes of target and output disagree.

        Args:
            target: The self target.
            output: The ``"self"`` output.
            source: How the message names the target (``'`y["self"]`'``, the input...).
        """
        ids = self.takes_token_ids(target, output.shape.rank)
        output_shape = output.shape[1:-1] if ids else output.shape[1:]
        if (target.shape.rank is not None and output.shape.rank is not None
                and target.shape[1:].is_fully_defined() and output_shape.is_fully_defined()
                and target.shape[1:] != output_shape):
            raise ValueError(
                f"The self target ({source}) has shape {target.shape} but the self loss "
                f"{self.name!r} needs per-example shape {self._expected_shape(output)}."
            )

    def _expected_shape(self, output: tf.Tensor) -> str:
        return f"{output.shape}"

    def value_checks(self, target: tf.Tensor, output_shape: tuple | None,
                     source: str) -> list[tuple[tf.Tensor, str]]:
        """``(condition, message)`` pairs the target's values must satisfy.

        Raises:
            ValueError: at once, for a target of the wrong dtype.
        """
        ids = self.takes_token_ids(target, output_shape and len(output_shape))
        if not ids:
            target = tf.cast(target, tf.float32)
            # Two reductions, no boolean tensors of the target's size.
            return [(tf.logical_and(tf.reduce_min(target) >= 0, tf.reduce_max(target) <= 1),
                     f"{source} must lie in [0, 1] for the binary cross-entropy self-loss.")]
        return self._id_checks(target, output_shape, source)

    def _id_checks(self, target: tf.Tensor, output_shape: tuple | None,
                   source: str) -> list[tuple[tf.Tensor, str]]:
        if target.dtype.is_floating or target.dtype == tf.string:
            raise ValueError(f"{source} must hold integer token ids for the self loss "
                             f"{self.name!r}, got dtype {target.dtype.name}.")
        classes = output_shape[-1] if output_shape else None
        target = tf.cast(target, tf.int64)
        bound = tf.reduce_max(target) < classes if classes else tf.constant(True)
        return [(tf.logical_and(tf.reduce_min(target) >= 0, bound),
                 f"{source} must hold token ids in [0, {classes or 'vocab'}) for the "
                 f"{self.name} self-loss.")]

    @abc.abstractmethod
    def terms(self, target: tf.Tensor, output: tf.Tensor) -> SelfLossTerms:
        """The batch's element-wise loss and which elements count."""

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits, "ignore_class": self.ignore_class}

    @classmethod
    def from_config(cls, config: dict) -> SelfLoss:
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class BinaryCrossentropySelfLoss(SelfLoss):
    """Binary cross-entropy against targets in [0, 1] (see the module docstring).

    ``ignore_class`` does not apply: every element counts.
    """

    name = "binary_crossentropy"

    def terms(self, target: tf.Tensor, output: tf.Tensor) -> SelfLossTerms:
        if self.takes_token_ids(target, output.shape.rank):
            target = tf.one_hot(tf.cast(target, tf.int32), tf.shape(output)[-1])
        elements = binary_crossentropy_elements(target, output, self.from_logits)
        # A position's loss is the mean over the last axis.
        return SelfLossTerms(elements, None, tf.cast(tf.shape(elements)[-1], tf.float32))


@keras.saving.register_keras_serializable(package="keras_selfevo")
class NextTokenSelfLoss(SelfLoss):
    """The next-token log-likelihood: ``-log p(target id)`` per position.

    Integer targets ``[batch, time]`` against scores ``[batch, time, vocab]`` (logits with
    ``from_logits=True``); ``ignore_class`` targets (padding) do not count.
    """

    name = "sparse_categorical_crossentropy"

    def takes_token_ids(self, target: tf.Tensor, output_rank: int | None) -> bool:
        return True

    def _expected_shape(self, output: tf.Tensor) -> str:
        return (f"{output.shape[1:-1]} (the 'self' output {output.shape} without its "
                "vocabulary axis)")

    def value_checks(self, target: tf.Tensor, output_shape: tuple | None,
                     source: str) -> list[tuple[tf.Tensor, str]]:
        return self._id_checks(target, output_shape, source)

    def terms(self, target: tf.Tensor, output: tf.Tensor) -> SelfLossTerms:
        elements = sparse_categorical_elements(target, output, self.from_logits)
        valid = (None if self.ignore_class is None else tf.cast(
            tf.not_equal(tf.cast(target, tf.int32), self.ignore_class), tf.float32))
        return SelfLossTerms(elements, valid, tf.constant(1.0))


@keras.saving.register_keras_serializable(package="keras_selfevo")
class SquaredErrorSelfLoss(SelfLoss):
    """The squared error against real-valued targets (e.g. a table's standardised features).

    A position's loss is the mean over the last axis, as binary cross-entropy's; the targets
    may take any finite value. ``from_logits`` and ``ignore_class`` do not apply.
    """

    name = "mean_squared_error"

    def takes_token_ids(self, target: tf.Tensor, output_rank: int | None) -> bool:
        return False

    def value_checks(self, target: tf.Tensor, output_shape: tuple | None,
                     source: str) -> list[tuple[tf.Tensor, str]]:
        return [(tf.reduce_all(tf.math.is_finite(tf.cast(target, tf.float32))),
                 f"{source} holds NaN or infinite values.")]

    def terms(self, target: tf.Tensor, output: tf.Tensor) -> SelfLossTerms:
        elements = tf.square(tf.cast(target, tf.float32) - tf.cast(output, tf.float32))
        return SelfLossTerms(elements, None, tf.cast(tf.shape(elements)[-1], tf.float32))


SELF_LOSS_KINDS: dict[str, type[SelfLoss]] = {
    BinaryCrossentropySelfLoss.name: BinaryCrossentropySelfLoss,
    NextTokenSelfLoss.name: NextTokenSelfLoss,
    SquaredErrorSelfLoss.name: SquaredErrorSelfLoss,
}
# The names SelfEvolvingModel.compile accepts.
SELF_LOSSES = tuple(SELF_LOSS_KINDS)


def get_self_loss(identifier: str | SelfLoss, from_logits: bool = False,
                  ignore_class: int | None = None) -> SelfLoss:
    """The self-loss object for a name, or an instance (returned as is).

    Names: ``"binary_crossentropy"``, ``"sparse_categorical_crossentropy"`` (the next-token
    log-likelihood).

    Raises:
        ValueError: an unknown name, or a bad ``ignore_class``.
    """
    if isinstance(identifier, SelfLoss):
        return identifier
    kind = _checks.lookup(SELF_LOSS_KINDS, identifier, "self_loss", " or a SelfLoss")
    return kind(from_logits=from_logits, ignore_class=ignore_class)
