"""LanguageModel: what the zoo's character language models share.

A :class:`LanguageModel` is a :class:`~keras_selfevo.SelfEvolvingModel` over token ids whose
``call`` returns ``{"self": logits, "policy": softmax(logits)}`` of shape
``[batch, time, vocab]``. This base gives it, in one place: the character vocabulary, the
next-token log-likelihood self-loss as the compile default, seeded generation (one graph, a
while loop over positions, through :func:`~keras_selfevo.layers.sample_tokens`), validation
nats/char, and the serving signatures (``serving_default`` / ``serve`` on ids, ``generate`` on
ids, ``generate_text`` on strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import text
from keras_selfevo.layers.token_sampler import check_sampling
from keras_selfevo.training import SelfEvolvingModel
from keras_selfevo.training.input_checks import (
    assert_all,
    first_tensor,
    input_errors_as_value_errors,
)
from keras_selfevo.training.serving import (
    ServingSignature,
)
from keras_selfevo.zoo import decoding, language_serving


class _Functions:
    """The model's traced helper functions; not a dict, so Keras and SavedModel ignore it."""

    def __init__(self):
        self.by_key: dict = {}


class LanguageModel(SelfEvolvingModel):
    """Base of the zoo's language models (``CharRNN``, ``GPT``); see the module docstring.

    Subclasses set :attr:`context_window` (the longest input, ``None`` for unlimited) and
    build their layers after calling :meth:`_set_vocabulary`.
    """

    context_window: int | None = None
    # compile's defaults: next-token prediction alone, scored by its log-likelihood on the
    # "self" logits with <pad> targets ignored (self_loss="binary_crossentropy" scores the
    # one-hot next token instead).
    default_alpha = 1.0
    default_self_loss = "sparse_categorical_crossentropy"
    self_output_is_logits = True
    default_self_ignore_class = text.PAD
    # The embedding's gather fails on an id beyond the vocabulary before the step's checks
    # run: a dataset's batches are checked in the pipeline.
    checks_inputs_in_pipeline = True

    def _set_vocabulary(self, vocab_size: int | None, vocabulary: str | None) -> None:
        if vocabulary is not None:
            derived = text.vocab_size(vocabulary)
            if vocab_size is not None and vocab_size != derived:
                raise ValueError(
                    f"`vocab_size`={vocab_size} does not match `vocabulary` ({derived} ids)."
                )
            vocab_size = derived
        if vocab_size is None:
            raise ValueError("Give `vocab_size` or `vocabulary`.")
        self.vocab_size = _checks.positive_int(vocab_size, "vocab_size")
        self.vocabulary = vocabulary
        self._functions = _Functions()

    def self_output_shape(self) -> tuple:
        """``[batch, time, vocab]`` logits (a subclassed model declares no outputs)."""
        return (None, None, self.vocab_size)

    @property
    def input_dtype(self) -> str:
        """Token ids are int32 (``model.export`` reads this for its input signature)."""
        return "int32"

    @staticmethod
    def _outputs(logits) -> dict:
        """``{"self": logits, "policy": softmax}``, in float32 at least (float64 stays)."""
        if keras.backend.standardize_dtype(logits.dtype) in ("float16", "bfloat16"):
            logits = keras.ops.cast(logits, "float32")
        return {"self": logits, "policy": keras.ops.softmax(logits, axis=-1)}

    def meta_task(self) -> tuple[str, keras.losses.Loss]:
        """What :class:`~keras_selfevo.MetaLearner` adapts: ``("self", loss)``.

        The ``"self"`` logits, scored by the next-token log-likelihood (the mean over the
        task's positions).
        """
        return "self", keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def input_value_checks(self, x: Any) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """Token ids within the vocabulary (the error quotes the ids found)."""
        ids = tf.cast(first_tensor(x), tf.int64)
        smallest, largest = tf.reduce_min(ids), tf.reduce_max(ids)
        message = tf.strings.format(
            "the input `x` holds token ids outside the vocabulary: ids in [{}, {}] for a "
            f"vocabulary of {self.vocab_size} ids (valid: 0 to {self.vocab_size - 1}).",
            (smallest, largest))
        return [(tf.logical_and(smallest >= 0, largest < self.vocab_size), message)]

    def predict(self, x, *args, **kwargs):
        """``keras.Model.predict``; token ids outside the vocabulary are a ``ValueError``.

        NumPy and tensor inputs are checked before anything runs.
        """
        flat = tf.nest.flatten(x)
        if flat and all(isinstance(t, (np.ndarray, tf.Tensor)) for t in flat):
            with input_errors_as_value_errors():
                assert_all(self.input_value_checks(x))
        return super().predict(x, *args, **kwargs)

    def _check_context(self, tokens) -> None:
        """A clear error for inputs longer than the context window (when the shape says)."""
        length = tokens.shape[1] if len(tokens.shape) > 1 else None
        if self.context_window is not None and length is not None and (
                length > self.context_window):
            raise ValueError(f"`tokens` has {length} positions but the model's block size "
                             f"(`block_size`) is {self.context_window}.")

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "vocabulary": self.vocabulary}

    def copy(self) -> LanguageModel:
        """A new model of this configuration holding these weights (built, not compiled)."""
        twin = type(self).from_config(self.get_config())
        twin.build((None, None))
        twin.set_weights(self.get_weights())
        return twin

    # --------------------------------------------------------------------------- sampling
    #: Compile the sampling loop with XLA (benchmarks/generate_throughput.py measures it).
    sampling_jit_compile: bool = True

    def decoding_start(self, tokens: tf.Tensor, start: tf.Tensor) -> tuple:
        """Logits of the token after ``tokens[:, :start]``, and the state to decode on with.

        This base re-runs the network over the context for every token (no state);
        ``GPT`` and ``CharRNN`` override it with a cache (:mod:`keras_selfevo.zoo.decoding`).
        """
        return decoding.uncached_logits(self, tokens, start - 1), ()

    def decoding_step(self, tokens: tf.Tensor, t: tf.Tensor, state: Any) -> tuple:
        """Logits of the token after ``tokens[:, t]`` (just sampled), and the new state."""
        return decoding.uncached_logits(self, tokens, t), ()

    def check_prompt_ids(self, prompt: Any, name: str = "prompt") -> None:
        """Check a prompt's token ids; a ``ValueError`` naming ``name`` if they are bad.

        They must be an integer array ``[batch, time]`` with ``time`` ≥ 1, no longer than
        the context window, with ids within the vocabulary (checked on concrete values).
        """
        shape = tuple(prompt.shape)
        dtype = tf.as_dtype(prompt.dtype) if hasattr(prompt, "dtype") else None
        if len(shape) != 2 or dtype is None or not dtype.is_integer:
            raise ValueError(f"`{name}` must be int token ids [batch, time], got shape {shape} "
                             f"and dtype {getattr(dtype, 'name', None)}.")
        if shape[1] is not None and shape[1] < 1:
            raise ValueError(f"`{name}` must hold at least one token per row (e.g. <bos>).")
        if self.context_window is not None and shape[1] is not None and (
                shape[1] > self.context_window):
            raise ValueError(f"`{name}` has {shape[1]} tokens, more than the model's block size "
                             f"(`block_size`={self.context_window}).")
        if not tf.is_tensor(prompt) or tf.executing_eagerly():
            values = np.asarray(prompt)
            if values.size and (values.min() < 0 or values.max() >= self.vocab_size):
                raise ValueError(f"`{name}` holds token ids outside the vocabulary: "
                                 f"ids in [{values.min()}, {values.max()}] for a vocabulary of "
                                 f"{self.vocab_size}.")

    def generate_ids(self, prompt: Any, length: int, temperature: float | tf.Tensor = 1.0,
                     top_k: int | None = None, seed: tf.Tensor | None = None,
                     top_p: float | None = None, use_cache: bool = True,
                     jit_compile: bool | None = None) -> tf.Tensor:
        """Append ``length`` sampled tokens to ``prompt`` (int ids ``[batch, time]``).

        One compiled graph per prompt shape and length (a while loop over positions, with
        XLA when :attr:`sampling_jit_compile`): new prompts of the same shape do not retrace,
        and temperature and seed are inputs of it. ``temperature`` 0 is greedy. Past the
        block size the context slides as :mod:`keras_selfevo.zoo.decoding` describes.

        Args:
            prompt: int token ids ``[batch, time]``, ``time`` ≥ 1.
            length: Tokens to sample (≥ 1).
            temperature: ≥ 0 (a number or a scalar tensor).
            top_k: Sample among the ``k`` most likely tokens (``None``: all).
            seed: A stateless seed, int32 ``[2]`` (``None``: a random one).
            top_p: Nucleus sampling mass in (0, 1] (``None``: all).
            use_cache: Decode with the model's cache or carried state; ``False`` re-runs the
                network over the context for every token (the same tokens, slower).
            jit_compile: Compile the loop with XLA (default: :attr:`sampling_jit_compile`).
                The random numbers come from integer hashing of the seed, so a seed draws
                the same tokens with and without it.

        Returns:
            int32 ids ``[batch, time + length]``.

        Raises:
            ValueError: a bad argument, named, before anything is traced.
        """
        _checks.positive_int(length, "length")
        check_sampling(temperature, top_k, top_p)
        self.check_prompt_ids(prompt)
        jit = self.sampling_jit_compile if jit_compile is None else bool(jit_compile)
        key = ("sample", length, top_k is None, top_p is None, bool(use_cache), jit)
        functions = self._functions.by_key
        if key not in functions:
            functions[key] = tf.function(
                lambda p, t, k, q, s: decoding.sample_loop(self, p, length, length, t, k, q, s,
                                                           use_cache),
                jit_compile=jit, reduce_retracing=True)
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32) if seed is None else seed
        return functions[key](tf.cast(prompt, tf.int32), tf.cast(temperature, tf.float32),
                              None if top_k is None else tf.constant(top_k, tf.int32),
                              None if top_p is None else tf.constant(top_p, tf.float32),
                              tf.cast(seed, tf.int32))

    def encode_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        """Token ids ``[batch, 1 + len]`` (``<bos>`` then the characters) of same-length prompts.

        Raises:
            ValueError: the model has no vocabulary, the prompts differ in length, or a
                prompt holds characters outside the vocabulary (named in the message).
        """
        if self.vocabulary is None:
            raise ValueError("String `prompts` need a model built with a `vocabulary`.")
        if len({len(p) for p in prompts}) > 1:
            raise ValueError("String `prompts` must all have the same length.")
        unknown = sorted(set("".join(prompts)) - set(self.vocabulary))
        if unknown:
            raise ValueError(f"`prompts` hold characters outside the model's `vocabulary`: "
                             f"{''.join(unknown)!r}.")
        return text.encode(prompts, self.vocabulary, add_end=False)

    def generate(self, prompts: Sequence[str] | np.ndarray, length: int,
                 temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None, top_p: float | None = None) -> list[str] | np.ndarray:
        """Sample continuations of ``prompts``.

        Args:
            prompts: Strings (with a ``vocabulary``; each starts after ``<bos>``; all must
                have the same length) or an int array of token ids ``[batch, time]``.
            length: Tokens to sample after each prompt.
            temperature: ≥ 0; 0 is greedy decoding.
            top_k: Sample among the ``k`` most likely tokens (``None``: all).
            seed: Makes the samples reproducible.
            top_p: Nucleus sampling: the smallest set of most likely tokens holding ``top_p``
                of the probability (``None``: all).

        Returns:
            Strings (prompt + continuation, cut at ``<eos>``) for string prompts, else the
            token ids ``[batch, time + length]``.
        """
        as_text = len(prompts) > 0 and isinstance(prompts[0], str)
        if as_text:
            ids = self.encode_prompts(prompts)
        else:
            ids = np.asarray(prompts)
            if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"`prompts` must be int ids [batch, time], got {ids.shape}.")
        seed_tensor = None if seed is None else tf.constant([seed, 0], tf.int32)
        out = self.generate_ids(ids, length, temperature, top_k, seed_tensor, top_p).numpy()
        return text.decode(out, self.vocabulary) if as_text else out

    # ------------------------------------------------------------------------- evaluation
    def nats_per_char(self, ids: np.ndarray, window: int = 64, batch_size: int = 256) -> float:
        """Mean ``-log p(next char)`` over a token stream, in non-overlapping windows.

        The stream (int ids, e.g. the validation split) is cut into consecutive windows of
        ``window`` inputs; each position sees its window's earlier characters and predicts
        the next one, as nanoGPT's figures are scored.
        """
        _checks.positive_int(window, "window")
        ids = np.asarray(ids, np.int32)
        count = (len(ids) - 1) // window
        if count < 1:
            raise ValueError(f"`ids` holds {len(ids)} tokens: fewer than one window of "
                             f"{window} + 1.")
        inputs = ids[: count * window].reshape(count, window)
        targets = ids[1: count * window + 1].reshape(count, window)
        functions = self._functions.by_key
        if "nll" not in functions:
            functions["nll"] = tf.function(lambda x, y: tf.reduce_sum(
                keras.ops.sparse_categorical_crossentropy(
                    y, self(x, training=False)["self"], from_logits=True)),
                reduce_retracing=True)
        total = 0.0
        for start in range(0, count, batch_size):
            total += float(functions["nll"](inputs[start:start + batch_size],
                                            targets[start:start + batch_size]))
        return total / targets.size

    # --------------------------------------------------------------------------- serving
    def serving_signatures(self, generate_length: int = 256) -> dict[str, ServingSignature]:
        """``serving_default`` / ``serve`` on token ids, ``generate`` and ``generate_text``.

        The sampling signatures take the prompt and the sampling settings as inputs, and
        return up to ``generate_length`` new tokens (:mod:`keras_selfevo.zoo.language_serving`).
        """
        return language_serving.language_signatures(self, generate_length)
