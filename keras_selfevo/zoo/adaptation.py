"""``adapt``: fit a language model of the zoo to a user's own text in a few steps."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import language_data, text
from keras_selfevo.meta.meta_learner import MetaLearner
from keras_selfevo.zoo.checkpoint import load_checkpoint
from keras_selfevo.zoo.dynamic_evaluation import check_settings, dynamic_evaluation
from keras_selfevo.zoo.language_model import LanguageModel

UNKNOWN_POLICIES = ("error", "skip", "replace")
SCORE_WINDOW = 64  # The package's nats/char windows (as the nanoGPT figures are scored).


@dataclasses.dataclass
class Adaptation:
    """What :func:`adapt` did.

    Attributes:
        model: The adapted model (a new model; the given one is unchanged).
        before: Held-back nats/char before adaptation.
        after: Held-back nats/char after adaptation.
        steps: Gradient steps taken.
        train_chars: Characters adapted on (the text before the held-back part).
        held_out_chars: Characters held back and scored.
        unknown: The characters outside the vocabulary that the policy skipped or replaced.
        seconds: Wall time of the adaptation steps.
    """

    model: LanguageModel
    before: float
    after: float
    steps: int
    train_chars: int
    held_out_chars: int
    unknown: str
    seconds: float


def language_model_of(model: keras.Model) -> tuple[LanguageModel, MetaLearner | None]:
    """The language model inside ``model`` (itself, or a MetaLearner's), and the learner."""
    learner = model if isinstance(model, MetaLearner) else None
    network = learner.model if learner is not None else model
    if not isinstance(network, LanguageModel) or network.vocabulary is None:
        raise ValueError(
            "`model` must be a language model of the zoo built with a `vocabulary` (e.g. "
            "kse.zoo.build('gpt') or 'char_rnn'), or a MetaLearner of one; got "
            f"{type(network).__name__}.")
    return network, learner


def encode_text(texts: str | Sequence[str], vocabulary: str, unknown: str = "error",
                placeholder: str = " ") -> tuple[np.ndarray, str]:
    """Token ids of ``texts`` (joined by newlines) and the out-of-vocabulary characters met.

    Args:
        texts: One text or several.
        vocabulary: The model's characters.
        unknown: Characters outside ``vocabulary``: ``"error"`` (a ValueError naming them),
            ``"skip"`` (dropped) or ``"replace"`` (each becomes ``placeholder``).
        placeholder: A character of ``vocabulary``, for ``unknown="replace"``.
    """
    _checks.one_of(unknown, "unknown", UNKNOWN_POLICIES)
    if isinstance(texts, str):
        texts = [texts]
    if (not isinstance(texts, Sequence) or not texts
            or not all(isinstance(t, str) for t in texts)):
        raise ValueError("`texts` must be a string or a non-empty sequence of strings, got "
                         f"{type(texts).__name__}.")
    joined = "\n".join(texts)
    if not joined.strip():
        raise ValueError("`texts` is empty (or only whitespace).")
    missing = "".join(sorted(set(joined) - set(vocabulary)))
    if missing and unknown == "error":
        raise ValueError(
            f"The text holds {len(missing)} characters outside the model's vocabulary: "
            f"{missing!r}; pass unknown='skip' to drop them, or unknown='replace' to map each "
            f"to placeholder={placeholder!r}.")
    if missing and unknown == "replace":
        if len(placeholder) != 1 or placeholder not in vocabulary:
            raise ValueError(f"`placeholder`={placeholder!r} must be one character of the "
                             "model's vocabulary.")
        joined = joined.translate({ord(c): placeholder for c in missing})
    elif missing:
        joined = joined.translate({ord(c): None for c in missing})
    return text.encode_stream(joined, vocabulary), missing


def _inner_steps(learner: MetaLearner, adapted: LanguageModel, batches: tf.data.Dataset,
                 learning_rate: float | None) -> None:
    """Apply the learner's inner step once per batch, then give ``adapted`` the weights."""
    rates = None if learning_rate is None else [learning_rate] * len(
        learner.model.trainable_variables)
    step = tf.function(lambda theta, x, y: learner.fast_weights(x, y, 1, theta, rates),
                       reduce_retracing=True)
    theta = [tf.convert_to_tensor(v) for v in learner.model.trainable_variables]
    for x, y in batches:
        theta = step(theta, x, y["self"])
    for variable, value in zip(adapted.trainable_variables, theta):
        variable.assign(value)


def check_arguments(steps: int | None, batch_size: int | None, held_out: float | None,
                    learning_rate: float | None, dynamic: bool,
                    decay: float) -> tuple[int, int, float]:
    """Check :func:`adapt`'s settings; ``steps``, ``batch_size``, ``held_out`` with defaults."""
    _checks.one_of(dynamic, "dynamic", (True, False))
    if dynamic:
        given = [name for name, value in (("steps", steps), ("batch_size", batch_size),
                                          ("held_out", held_out)) if value is not None]
        if given:
            raise ValueError(f"`{given[0]}` does not apply with dynamic=True: dynamic "
                             "evaluation steps once on every window of the whole text.")
        check_settings("adam", learning_rate, decay)
    elif decay:
        raise ValueError("`decay` applies with dynamic=True only.")
    steps = 100 if steps is None else steps
    batch_size = 32 if batch_size is None else batch_size
    held_out = 0.1 if held_out is None else held_out
    _checks.positive_int(steps, "steps")
    _checks.positive_int(batch_size, "batch_size")
    _checks.number(held_out, "held_out", low=0.0, high=1.0, low_open=True, high_open=True)
    _checks.positive_number(learning_rate, "learning_rate", allow_none=True)
    return steps, batch_size, held_out


def _dynamic(network: LanguageModel, learner: MetaLearner | None, ids: np.ndarray,
             window: int, learning_rate: float | None, decay: float,
             missing: str) -> Adaptation:
    """``adapt(dynamic=True)``: dynamic evaluation of the whole text."""
    # A learner steps as it was meta-trained to: its rates on the weights it adapts.
    rates = None if learner is None else learner.inner_rates(learning_rate)
    if len(ids) < window + 1:
        raise ValueError(f"The text holds {len(ids)} usable characters: too short for one "
                         f"window of {window} + 1 characters.")
    result = dynamic_evaluation(network, ids, window, optimizer="adam",
                                learning_rate=learning_rate, decay=decay, rates=rates)
    return Adaptation(model=result.model, before=result.static, after=result.dynamic,
                      steps=result.windows, train_chars=result.chars,
                      held_out_chars=result.chars, unknown=missing,
                      seconds=result.dynamic_seconds)


def adapt(
    model: keras.Model | str,
    texts: str | Sequence[str],
    steps: int | None = None,
    *,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    held_out: float | None = None,
    unknown: str = "error",
    placeholder: str = " ",
    seed: int = 0,
    dynamic: bool = False,
    decay: float = 0.0,
    verbose: str | int = "auto",
) -> Adaptation:
    """Adapt a language model to ``texts`` with ``steps`` gradient steps; score before and after.

    The last ``held_out`` share of the text is held back and scored (nats/char in
    non-overlapping 64-character windows, or the model's block size if shorter); the
    rest gives random training windows of that length. A meta-learned model (a
    :class:`MetaLearner`) adapts as it was meta-trained, with its own inner step
    (:meth:`MetaLearner.fast_weights`: SGD at ``inner_lr``, Meta-SGD's learned per-parameter
    rates, ANIL's ``adapt_layers`` only), one batch of windows per step; any other model
    with Adam (``learning_rate`` default 1e-4, where the zoo's recipes end their
    learning-rate decay). The model given is not changed: the adapted weights live in a new
    model.

    With ``dynamic=True`` it is dynamic evaluation instead (Krause et al., 2018; see
    :func:`~keras_selfevo.zoo.dynamic_evaluation.dynamic_evaluation`): the whole text is
    scored in consecutive 64-character windows, each by the weights that have taken one
    step on every window before it; ``before`` is the static score of the same windows,
    ``after`` the dynamic one, and ``steps`` the windows. A learner steps with its own rates
    (Meta-SGD's learned ones, ANIL's layers); any other model with Adam (``learning_rate``
    default 3e-5). ``steps``, ``batch_size`` and ``held_out`` do not apply then.

    Args:
        model: A zoo language model (``gpt``, ``char_rnn``) or a MetaLearner of one, or the
            name of a preset or the path of a checkpoint holding one.
        texts: The user's text (one string, or several joined by newlines).
        steps: Gradient steps (≥ 1; default 100).
        learning_rate: Step size (default: the learner's inner rates, else 1e-4); for a
            learner, one rate for every adapted weight in place of its own.
        batch_size: Windows per step (default 32).
        held_out: Share of the text held back for scoring, in (0, 1) (default 0.1).
        unknown: Characters outside the vocabulary: ``"error"``, ``"skip"`` or
            ``"replace"`` (see :func:`encode_text`).
        placeholder: The replacement character for ``unknown="replace"``.
        seed: Seed of the training windows.
        dynamic: Dynamic evaluation (above) instead of steps on held-apart windows.
        decay: With ``dynamic``, the share of the way back to the starting weights after
            each step (0 ≤ decay < 1).
        verbose: ``fit``'s verbosity (a progress bar by default).

    Returns:
        An :class:`Adaptation` with the adapted model and the held-back nats/char.

    Raises:
        ValueError: a bad argument, characters outside the vocabulary (named), or a text
            too short for one window in each part; all before any step.
    """
    steps, batch_size, held_out = check_arguments(steps, batch_size, held_out, learning_rate,
                                                  dynamic, decay)
    if isinstance(model, str):
        model = load_checkpoint(model)
    network, learner = language_model_of(model)
    ids, missing = encode_text(texts, network.vocabulary, unknown, placeholder)
    window = min(SCORE_WINDOW, network.context_window or SCORE_WINDOW)
    if dynamic:
        return _dynamic(network, learner, ids, window, learning_rate, decay, missing)
    cut = int(len(ids) * (1.0 - held_out))
    train, scored = ids[:cut], ids[cut:]
    if min(len(train), len(scored)) < window + 2:
        raise ValueError(
            f"The text holds {len(ids)} usable characters: too short to hold back "
            f"{held_out:.0%} and keep a window of {window} + 1 characters in each part.")

    adapted = network.copy()
    before = adapted.nats_per_char(scored, window)
    batches = language_data.window_batches(train, window, batch_size, seed, 0, steps)
    start = time.perf_counter()
    if learner is not None:
        _inner_steps(learner, adapted, batches, learning_rate)
    else:
        adapted.compile(optimizer=keras.optimizers.Adam(learning_rate or 1e-4), alpha=1.0)
        adapted.fit(batches, epochs=1, steps_per_epoch=steps, verbose=verbose, shuffle=False)
    seconds = time.perf_counter() - start
    return Adaptation(model=adapted, before=before, after=adapted.nats_per_char(scored, window),
                      steps=steps, train_chars=len(train), held_out_chars=len(scored),
                      unknown=missing, seconds=seconds)
