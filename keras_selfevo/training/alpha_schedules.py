"""Schedules of the mixing weight ``alpha`` in ``L = alpha L_self + (1 - alpha) L_reinforce``.

A schedule is called with the optimizer's step (a tensor) and returns alpha in [0, 1].
Typical use: start self-supervised (alpha near 1) and shift toward reward (alpha near 0).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.identifiers import as_instance


def _check_alpha(value: float, name: str) -> float:
    return _checks.number(value, name, 0.0, 1.0, kind="a float")


class AlphaSchedule(abc.ABC):
    """Base class of serializable alpha schedules: ``schedule(step) -> alpha``."""

    @abc.abstractmethod
    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        """Alpha at ``step`` as a float32 scalar tensor."""

    @abc.abstractmethod
    def get_config(self) -> dict:
        """Constructor arguments."""

    @classmethod
    def from_config(cls, config: dict) -> AlphaSchedule:
        """Rebuild from :meth:`get_config`."""
        return cls(**config)

    def constant_value(self) -> float | None:
        """The value of a schedule that never changes, else ``None``."""
        return None


@keras.saving.register_keras_serializable(package="keras_selfevo")
class ConstantAlpha(AlphaSchedule):
    """The same alpha at every step (what a float ``alpha`` becomes).

    Args:
        value: Alpha, in [0, 1].
    """

    def __init__(self, value: float = 0.5):
        self.value = _check_alpha(value, "alpha")

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        return tf.constant(self.value, tf.float32)

    def constant_value(self) -> float | None:
        return self.value

    def get_config(self) -> dict:
        return {"value": self.value}

    def __repr__(self) -> str:
        return repr(self.value)


class _CallableAlpha(AlphaSchedule):
    """A user's callable of the step as a schedule (saved only if the callable is)."""

    def __init__(self, fn: Callable[[tf.Tensor], tf.Tensor]):
        self.fn = fn

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        return self.fn(step)

    def get_config(self) -> dict:
        return {"fn": keras.saving.serialize_keras_object(self.fn)}


@keras.saving.register_keras_serializable(package="keras_selfevo")
class LinearAlpha(AlphaSchedule):
    """Alpha moves linearly from ``start`` to ``end`` over ``steps`` steps, then stays.

    Args:
        start: Alpha at step 0.
        end: Alpha from step ``steps`` on.
        steps: Length of the ramp (> 0).
    """

    def __init__(self, start: float = 1.0, end: float = 0.0, steps: int = 1000):
        self.start = _check_alpha(start, "start")
        self.end = _check_alpha(end, "end")
        self.steps = _checks.positive_int(steps, "steps")

    def _progress(self, step: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(tf.cast(step, tf.float32) / float(self.steps), 0.0, 1.0)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        return self.start + (self.end - self.start) * self._progress(step)

    def get_config(self) -> dict:
        return {"start": self.start, "end": self.end, "steps": self.steps}


@keras.saving.register_keras_serializable(package="keras_selfevo")
class CosineAlpha(LinearAlpha):
    """Alpha follows half a cosine from ``start`` to ``end`` over ``steps`` steps, then stays."""

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        shape = 0.5 * (1.0 - tf.cos(math.pi * self._progress(step)))
        return self.start + (self.end - self.start) * shape


def get_alpha(
    alpha: float | AlphaSchedule | Callable[[tf.Tensor], tf.Tensor] | dict,
) -> AlphaSchedule:
    """``alpha`` as a schedule: a float in [0, 1] (constant), a schedule, or a callable."""
    schedule = as_instance(alpha, AlphaSchedule, _CallableAlpha)
    return ConstantAlpha(alpha) if schedule is None else schedule
