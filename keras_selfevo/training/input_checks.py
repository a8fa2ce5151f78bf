"""Input checks of SelfEvolvingModel: structure while tracing, values on every batch.

Structural problems (missing keys, wrong output dict) raise ``ValueError`` while the step is
traced. Value problems (reward shape, NaN, negative rewards with ``"raw"``, self targets
outside [0, 1]) are assert ops: in the step in graph mode, in the tf.data pipeline under
XLA (which drops asserts), and eagerly for NumPy inputs. Their failures are turned back into
``ValueError`` naming the argument by :func:`input_errors_as_value_errors`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import keras_internals

TARGET_KEYS = ("self", "policy", "reward", "action", "policy_mask", "old_log_prob")
# Targets of the reinforce term that hold one value per policy position: [batch] for a
# classifier, [batch, time] for a sequence (the "policy" target without its last axis).
_POSITION_KEYS = ("policy_mask", "old_log_prob")
_CHECK_MARKER = "keras_selfevo input check: "
_CHECK_END = " (end of check)"


def first_tensor(x: Any) -> tf.Tensor:
    """The first tensor of a nest of inputs (it sets the batch size)."""
    return next(t for t in tf.nest.flatten(x) if t is not None)


def assert_all(checks: list[tuple[tf.Tensor, str | tf.Tensor]]) -> list[tf.Operation]:
    """One assert op for all ``(condition, message)`` pairs, naming the first that fails.

    A message is a string, or a string tensor for one that quotes values (e.g. the largest
    token id). A single op (instead of one per check) keeps the step's op count, and so
    its per-step overhead, low.
    """
    if not checks:
        return []
    conditions = tf.stack([condition for condition, _ in checks])
    if all(isinstance(message, str) for _, message in checks):
        messages = tf.constant([_CHECK_MARKER + message + _CHECK_END for _, message in checks])
    else:
        messages = tf.stack([tf.strings.join([_CHECK_MARKER, message, _CHECK_END])
                             for _, message in checks])
    first_failed = tf.argmin(tf.cast(conditions, tf.int32), output_type=tf.int32)
    return [tf.debugging.Assert(tf.reduce_all(conditions), [messages[first_failed]])]


@contextlib.contextmanager
def input_errors_as_value_errors():
    """Turn the input checks' runtime failures into ``ValueError`` naming the argument."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        found = re.search(re.escape(_CHECK_MARKER) + "(.*?)" + re.escape(_CHECK_END), error.message)
        if not found:
            raise
        # TensorFlow prints the message as a string literal: undo its quote escapes.
        raise ValueError(re.sub(r"\\(['\"])", r"\1", found.group(1)).strip()) from None


def _is_text_dtype(dtype: Any) -> bool:
    """Whether a TensorFlow, NumPy or Keras dtype holds strings or Python objects."""
    if isinstance(dtype, tf.DType):
        return dtype == tf.string
    try:
        return np.dtype(dtype).kind in ("O", "S", "U")
    except TypeError:
        return str(dtype) == "string"


class InputChecks:
    """The checks, as methods of :class:`~keras_selfevo.SelfEvolvingModel` (a mixin).

    They read the model's ``alpha``, ``masked_self_loss``, ``self_loss``, ``reward_weighting``
    and ``jit_compile``.
    """

    #: Check a dataset's batches in the input pipeline, before the step: for a model whose
    #: forward pass fails on a bad input before the step's checks could run (token ids
    #: beyond an embedding).
    checks_inputs_in_pipeline: bool = False

    def uses_self_loss(self) -> bool:
        """Whether the compiled objective has a self-loss term (alpha is not fixed at 0)."""
        return self.alpha.constant_value() != 0.0

    @property
    def declared_outputs(self) -> Any:
        """The outputs a functional model was built with (a dict or one tensor), else None."""
        return keras_internals.declared_outputs(self)

    def self_output_shape(self) -> tuple | None:
        """Shape of the ``"self"`` output when the model declares it (functional models)."""
        outputs = self.declared_outputs
        tensor = outputs.get("self") if isinstance(outputs, Mapping) else outputs
        return None if tensor is None else tuple(tensor.shape)

    def uses_reinforce_loss(self) -> bool:
        """Whether the compiled objective has a reinforce term (alpha is not fixed at 1)."""
        return self.alpha.constant_value() != 1.0

    def _check_output_names(self) -> None:
        """For functional models, check the output dict before any data is seen."""
        structure = self.declared_outputs
        if isinstance(structure, Mapping):
            self._check_outputs(structure)

    def _check_outputs(self, outputs: Any) -> None:
        if not isinstance(outputs, Mapping):
            if self.masked_self_loss:
                raise ValueError(
                    "`masked_self_loss=True` needs the model outputs to be a dict with a "
                    "'mask' output (e.g. from RandomMasking)."
                )
            return
        needed = {"self"} if self.uses_self_loss() else set()
        needed |= {"policy"} if self.uses_reinforce_loss() else set()
        needed |= {"mask"} if self.masked_self_loss else set()
        missing = needed - set(outputs)
        if missing:
            raise ValueError(
                f"The model outputs dict lacks {sorted(missing)}: with alpha={self.alpha!r} "
                f"and masked_self_loss={self.masked_self_loss} it needs {sorted(needed)}; "
                f"it has {sorted(outputs)}."
            )

    def _check_targets(self, x: Any, y: Any) -> None:
        """Structural checks made while tracing (Python errors, before any update)."""
        if y is None:
            y = {}
        if not isinstance(y, Mapping):
            raise ValueError(
                "`y` must be a dict with keys among "
                f"{TARGET_KEYS}, e.g. {{'policy': ..., 'reward': ...}}; got {type(y).__name__}."
            )
        unknown = set(y) - set(TARGET_KEYS)
        if unknown:
            raise ValueError(f"`y` has unknown keys {sorted(unknown)}; expected {TARGET_KEYS}.")
        if self.uses_reinforce_loss():
            for key in ("policy", "reward"):
                if key not in y:
                    raise ValueError(
                        f'`y["{key}"]` is missing: with alpha={self.alpha!r} the reward term '
                        "needs y['policy'] and y['reward']."
                    )
            if "old_log_prob" in self.reinforce_loss.target_keys and "old_log_prob" not in y:
                raise ValueError('`y["old_log_prob"]` is missing: the clipped reinforce loss '
                                 "(clip_epsilon) needs the log-probabilities of the actions "
                                 "when they were sampled.")
        self._check_position_targets(y)
        for key in ("policy", "reward", "action", *_POSITION_KEYS):
            dtype = getattr(y.get(key), "dtype", None)
            if dtype is not None and _is_text_dtype(dtype):
                raise ValueError(f'`y["{key}"]` must hold numbers, got dtype {dtype!r}.')
        batch = first_tensor(x).shape[0] if tf.nest.flatten(x) else None
        for key in ("reward", "action"):
            shape = getattr(y.get(key), "shape", None)
            if shape is None or batch is None or None in tuple(shape):
                continue  # checked on the values instead
            if len(shape) == 0 or shape[0] != batch or int(np.prod(shape)) != batch:
                raise ValueError(
                    f'`y["{key}"]` must hold one value per sample, shape (batch,) or '
                    f"(batch, 1), matching the batch size of x ({batch}); got {tuple(shape)}."
                )
        outputs = self.declared_outputs
        own_target = isinstance(outputs, Mapping) and "self_target" in outputs
        if (self.uses_self_loss() and "self" not in y and not own_target
                and len(tf.nest.flatten(x)) != 1):
            raise ValueError(
                '`y["self"]` is missing and the model has several inputs: give the self '
                "target explicitly."
            )

    @staticmethod
    def _check_position_targets(y: Mapping) -> None:
        """``policy_mask`` and ``old_log_prob`` have the policy target's shape minus its last axis.

        That is one value per example of a classifier, per position of a sequence.
        """
        policy = getattr(y.get("policy"), "shape", None)
        for key in _POSITION_KEYS:
            shape = getattr(y.get(key), "shape", None)
            if shape is None:
                continue
            if policy is None:
                raise ValueError(f'`y["{key}"]` needs `y["policy"]` (one value per policy '
                                 "position).")
            want, got = tuple(policy)[:-1], tuple(shape)
            if len(want) != len(got) or any(a is not None and b is not None and a != b
                                            for a, b in zip(want, got)):
                raise ValueError(f'`y["{key}"]` must have the shape of `y["policy"]` without '
                                 f"its last axis, {want}; got {got}.")

    def input_value_checks(self, x: Any) -> list[tuple[tf.Tensor, str | tf.Tensor]]:
        """``(condition, message)`` pairs the inputs' values must satisfy (none here).

        A model whose inputs have a valid range declares it here (the zoo's language
        models: token ids within the vocabulary).
        """
        return []

    def _runtime_checks(self, x: Any, y: Any) -> list[tf.Operation]:
        """Value checks on one batch (or whole arrays), as one assert op."""
        y = y if isinstance(y, Mapping) else {}
        batch = tf.shape(first_tensor(x))[0]
        checks = list(self.input_value_checks(x))
        for key in ("reward", "action"):
            if key in y:
                value = tf.cast(y[key], tf.float32)
                checks.append((
                    tf.logical_and(tf.equal(tf.size(value), batch),
                                   tf.equal(tf.shape(value)[0], batch)),
                    f'`y["{key}"]` must hold one value per sample, shape (batch,) or '
                    "(batch, 1), matching the batch size of x.",
                ))
                checks.append((
                    tf.reduce_all(tf.math.is_finite(value)),
                    f'`y["{key}"]` contains NaN or infinite values.',
                ))
        if "policy_mask" in y:
            mask = tf.cast(y["policy_mask"], tf.float32)
            checks.append((tf.logical_and(tf.reduce_min(mask) >= 0, tf.reduce_max(mask) <= 1),
                           '`y["policy_mask"]` must lie in [0, 1] (1: the policy sampled the '
                           "position's token)."))
        if "reward" in y:
            checks += self.reward_weighting.batch_checks(tf.reshape(y["reward"], [-1]))
        if "reward" in y and self.reward_weighting.requires_non_negative:
            checks.append((
                tf.reduce_min(tf.cast(y["reward"], tf.float32)) >= 0,
                '`y["reward"]` has negative rewards, which reward_weighting '
                f"{type(self.reward_weighting).__name__} (w = r) does not allow; use "
                "'normalized', 'awr' or 'filter'.",
            ))
        if self.uses_self_loss():
            target = y.get("self", x if len(tf.nest.flatten(x)) == 1 else None)
            name = '`y["self"]`' if "self" in y else "the input `x` (used as self target)"
            if target is not None:
                target = tf.convert_to_tensor(first_tensor(target))
                checks += self.self_loss.value_checks(target, self.self_output_shape(), name)
        return assert_all(checks)

    def _step_checks(self, x: Any, y: Any) -> list[tf.Operation]:
        """The value checks as ops of the step; none under XLA, which drops asserts."""
        return [] if self.jit_compile else self._runtime_checks(x, y)

    def _validated_dataset(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """The dataset with the value checks run on every element in the input pipeline."""

        def validate(*element):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(
                element[0] if len(element) == 1 else element
            )
            with tf.control_dependencies(self._runtime_checks(x, y)):
                return tf.nest.map_structure(
                    lambda t: tf.identity(t) if isinstance(t, tf.Tensor) else t,
                    element[0] if len(element) == 1 else element,
                )

        # Prefetch so the checks run ahead of the train step instead of in front of it.
        return dataset.map(validate).prefetch(tf.data.AUTOTUNE)

    def _checked_call(self, method, x: Any, y: Any, *args, **kwargs) -> Any:
        """``method(x, y, ...)`` with its inputs checked first.

        ``method`` is Keras's ``fit``, ``evaluate``, ``train_on_batch`` or ``test_on_batch``
        of the model; ``x``, ``y`` and any ``validation_data`` are checked before it runs,
        and the checks' failures while it runs are raised as ``ValueError``.
        """
        with input_errors_as_value_errors():
            x = self._validated(x, y)
            validation = kwargs.get("validation_data")
            if isinstance(validation, tf.data.Dataset):
                kwargs["validation_data"] = self._validated(validation, None)
            elif isinstance(validation, (tuple, list)) and len(validation) >= 2:
                self._validated(validation[0], validation[1])
            return method(x, y, *args, **kwargs)

    def _validated(self, x: Any, y: Any) -> Any:
        """Check NumPy/tensor inputs now; under XLA, wrap a dataset to check its batches.

        Without XLA every batch is checked inside the step (:meth:`train_step`), which is
        cheaper than an input-pipeline stage; XLA drops assert ops, so there the checks run
        in the tf.data pipeline instead, as they do for a model that sets
        :attr:`checks_inputs_in_pipeline`.
        """
        if isinstance(x, tf.data.Dataset):
            in_pipeline = self.jit_compile or self.checks_inputs_in_pipeline
            return self._validated_dataset(x) if in_pipeline else x
        if x is not None and not isinstance(x, keras.utils.PyDataset) and not callable(
            getattr(x, "__next__", None)
        ):
            flat = tf.nest.flatten(x)
            if flat and all(isinstance(t, (np.ndarray, tf.Tensor)) for t in flat):
                self._check_targets(x, y)
                self._runtime_checks(x, y)  # eager: raises at once
        return x
