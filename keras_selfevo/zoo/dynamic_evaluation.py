"""Dynamic evaluation (Krause et al., 2018): score a text while adapting on what was scored.

The text is cut into consecutive, non-overlapping windows, as
:meth:`~keras_selfevo.zoo.LanguageModel.nats_per_char` scores it. Window ``i`` is scored
by the weights that have taken one gradient step on each of windows ``0 … i-1``; then the
model steps on window ``i``. No character is scored by weights that have seen it, so the
figure compares with the static score of the same windows. A decay pulls the weights back
toward where they started (Krause et al.'s global prior), so a long text does not carry the
model away from what it knew.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks

OPTIMIZERS = ("sgd", "adam")
# The best of each on the validation split with the CPU-recipe gpt (models/shakespeare_gpt's
# card, "Dynamic evaluation").
DEFAULT_LEARNING_RATE = {"sgd": 0.003, "adam": 3e-5}


@dataclasses.dataclass
class DynamicEvaluation:
    """What :func:`dynamic_evaluation` measured.

    Attributes:
        static: nats/char of the windows with the weights fixed.
        dynamic: nats/char of the same windows, each scored before the model stepped on it.
        windows: Windows scored (one gradient step after each).
        chars: Characters scored (``windows × window``).
        static_seconds: Wall time of the static pass.
        dynamic_seconds: Wall time of the dynamic pass (score + step per window).
        model: The model after its steps on every window (a new model; the one given is
            unchanged).
    """

    static: float
    dynamic: float
    windows: int
    chars: int
    static_seconds: float
    dynamic_seconds: float
    model: keras.Model

    @property
    def gain(self) -> float:
        """Relative improvement of the dynamic score over the static one."""
        return (self.static - self.dynamic) / self.static


def check_settings(optimizer: str, learning_rate: float | None, decay: float) -> float:
    """Validate the settings; the learning rate to use (the optimizer's default if None)."""
    _checks.one_of(optimizer, "optimizer", OPTIMIZERS)
    _checks.positive_number(learning_rate, "learning_rate", allow_none=True)
    _checks.number(decay, "decay", low=0.0, high=1.0, high_open=True, kind="a float")
    return DEFAULT_LEARNING_RATE[optimizer] if learning_rate is None else float(learning_rate)


@dataclasses.dataclass
class _Runner:
    """A model's copy that steps, its optimizer, and the traced pass over a text's windows."""

    copy: keras.Model
    optimizer: keras.optimizers.Optimizer | None
    run: Any


def _runner(model: keras.Model, window: int, optimizer: str, with_rates: bool,
            with_decay: bool) -> _Runner:
    """The runner for these settings, made once per model: later texts reuse its trace."""
    cache = model._functions.by_key
    key = ("dynamic_evaluation", window, "rates" if with_rates else optimizer, with_decay)
    if key in cache:
        return cache[key]
    copy = model.copy()
    variables = copy.trainable_variables
    step_with = None
    if not with_rates:
        step_with = (keras.optimizers.SGD(1.0) if optimizer == "sgd"
                     else keras.optimizers.Adam(1.0))
        step_with.build(variables)

    def apply(grads, rates):
        if step_with is not None:
            step_with.apply(grads, variables)
            return
        for variable, grad, step_size in zip(variables, grads, rates):
            variable.assign_sub(step_size * tf.convert_to_tensor(grad))

    @tf.function
    def run(x_all, y_all, initial, rates, decay):
        total = tf.zeros((), tf.float64)
        for index in tf.range(tf.shape(x_all)[0]):
            x, y = x_all[index][None], y_all[index][None]
            with tf.GradientTape() as tape:
                logits = copy(x, training=False)["self"]
                nll = keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
                loss = tf.reduce_mean(nll)
            total += tf.cast(tf.reduce_sum(nll), tf.float64)
            apply(tape.gradient(loss, variables), rates)
            for variable, first in zip(variables if with_decay else (), initial):
                variable.assign(variable + decay * (first - variable))
        return total

    cache[key] = _Runner(copy, step_with, run)
    return cache[key]


def dynamic_evaluation(model: keras.Model, ids: Any, window: int = 64, *,
                       optimizer: str = "adam", learning_rate: float | None = None,
                       decay: float = 0.0, rates: list | None = None) -> DynamicEvaluation:
    """Score ``ids`` statically and dynamically (see the module docstring).

    Args:
        model: A zoo language model (``gpt``, ``char_rnn``); it is not changed.
        ids: The text as token ids (``kse.data.text.encode_stream``).
        window: Characters per window (at most the model's context).
        optimizer: ``"adam"`` or ``"sgd"``: the step after each window, on the window's
            mean next-token log-likelihood.
        learning_rate: Step size (default 3e-5 for Adam, 0.003 for SGD).
        decay: After each step, move the weights this share of the way back to where they
            started (0: no pull back).
        rates: SGD step sizes, one per trainable variable (a number, or a tensor of the
            variable's shape: a Meta-SGD learner's learned rates; 0 leaves a variable fixed),
            in place of ``optimizer`` and ``learning_rate``.

    Returns:
        A :class:`DynamicEvaluation`: static and dynamic nats/char and the time each took.

    Raises:
        ValueError: a bad argument, or fewer than one window + 1 characters.
    """
    rate = check_settings(optimizer, learning_rate, decay)
    _checks.positive_int(window, "window")
    context = getattr(model, "context_window", None)
    if context is not None and window > context:
        raise ValueError(f"`window`={window} is longer than the model's context ({context}).")
    ids = np.asarray(ids, np.int32)
    count = (len(ids) - 1) // window
    if count < 1:
        raise ValueError(f"`ids` holds {len(ids)} tokens: fewer than one window of {window} + 1.")
    inputs = ids[: count * window].reshape(count, window)
    targets = ids[1: count * window + 1].reshape(count, window)
    model.check_prompt_ids(targets, "ids")
    model.check_prompt_ids(inputs[:1], "ids")

    start = time.perf_counter()
    static = model.nats_per_char(ids, window)
    static_seconds = time.perf_counter() - start

    variables = model.trainable_variables
    if rates is not None:
        if len(rates) != len(variables):
            raise ValueError(f"`rates` must hold one rate per trainable variable "
                             f"({len(variables)}), got {len(rates)}.")
        rates = [tf.cast(r, v.dtype) for r, v in zip(rates, variables)]
    runner = _runner(model, window, optimizer, rates is not None, decay > 0)
    runner.copy.set_weights(model.get_weights())
    if runner.optimizer is not None:  # a fresh optimizer state for every text
        for variable in runner.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        runner.optimizer.learning_rate.assign(rate)
    initial = [tf.convert_to_tensor(v) for v in variables]
    start = time.perf_counter()
    total = float(runner.run(tf.constant(inputs), tf.constant(targets), initial,
                             rates or [], tf.constant(decay, variables[0].dtype)))
    dynamic_seconds = time.perf_counter() - start
    # The runner's copy is reused by the next call: the result gets its own.
    adapted = runner.copy.copy()
    return DynamicEvaluation(static=static, dynamic=total / targets.size, windows=count,
                             chars=int(targets.size), static_seconds=static_seconds,
                             dynamic_seconds=dynamic_seconds, model=adapted)
