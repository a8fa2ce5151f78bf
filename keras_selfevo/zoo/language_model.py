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

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import text
from keras_selfevo.layers import sample_tokens
from keras_selfevo.training import SelfEvolvingModel
from keras_selfevo.training.serving import (
    ServingSignature,
    predict_signatures,
    self_policy_outputs,
)


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

    # --------------------------------------------------------------------------- sampling
    def generate_ids(self, prompt: tf.Tensor, length: int, temperature: float | tf.Tensor = 1.0,
                     top_k: int | None = None, seed: tf.Tensor | None = None,
                     top_p: float | None = None) -> tf.Tensor:
        """Append ``length`` sampled tokens to ``prompt`` (int ids ``[batch, time]``).

        Runs as one graph (a while loop over positions; the shapes are fixed, so new prompts
        of the same length do not retrace). ``temperature`` 0 is greedy. A model with a
        context window sees the last ``context_window`` tokens at each step.

        Returns:
            int32 ids ``[batch, time + length]``.
        """
        _checks.positive_int(length, "length")
        if not isinstance(temperature, tf.Tensor):
            _checks.number(temperature, "temperature", 0.0)
        width = prompt.shape[1] if len(prompt.shape) == 2 else None
        if self.context_window is not None and width is not None and (
                width > self.context_window):
            raise ValueError(f"`prompt` has {width} tokens, more than the model's block size "
                             f"(`block_size`={self.context_window}).")
        key = (length, top_k, top_p)
        functions = self._functions.by_key
        if key not in functions:
            functions[key] = tf.function(
                lambda p, t, s: self._sample_loop(p, length, t, top_k, s, top_p),
                reduce_retracing=True)
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32) if seed is None else seed
        return functions[key](tf.cast(prompt, tf.int32),
                                       tf.cast(temperature, tf.float32),
                                       tf.cast(seed, tf.int32))

    def _sample_loop(self, prompt, length, temperature, top_k, seed, top_p=None) -> tf.Tensor:
        start = tf.shape(prompt)[1]
        total = start + length
        tokens = tf.concat([prompt, tf.zeros([tf.shape(prompt)[0], length], tf.int32)], 1)
        positions = tf.range(total)[None, :]
        window = total if self.context_window is None else tf.minimum(total,
                                                                       self.context_window)

        def step(t, tokens):
            # The network is causal: position t - 1 sees only tokens before t, so the
            # not-yet-sampled zeros after it change nothing.
            first = tf.maximum(t - window, 0)
            context = tokens[:, first:first + window]
            logits = self(context, training=False)["self"][:, t - 1 - first]
            new = sample_tokens(logits, temperature, top_k,
                                tf.random.experimental.stateless_fold_in(seed, t), top_p)
            return t + 1, tf.where(positions == t, new[:, None], tokens)

        _, tokens = tf.while_loop(lambda t, _: t < total, step, (start, tokens))
        return tokens

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
    def serving_signatures(self, generate_length: int = 32, temperature: float = 1.0,
                           top_k: int | None = None) -> dict[str, ServingSignature]:
        """``serving_default`` / ``serve`` on token ids, ``generate`` and ``generate_text``.

        ``generate`` takes ``prompt`` (int32 ids ``[batch, time]``) and ``seed`` (int32
        ``[batch]``; the first row's seed drives the batch) and returns ``tokens``: the
        prompt followed by ``generate_length`` tokens sampled at ``temperature``, ``top_k``.
        ``generate_text`` (models with a vocabulary) takes ``prompt`` strings of one length
        and ``seed`` and returns ``text``: the prompt and its continuation, cut at ``<eos>``.
        """
        _checks.positive_int(generate_length, "generate_length")
        signatures = predict_signatures(
            self, [tf.TensorSpec([None, None], tf.int32, name="tokens")], self_policy_outputs)
        rate = tf.constant(temperature, tf.float32)

        def generate(prompt, seed):
            stream = tf.stack([seed[0], tf.constant(0, tf.int32)])
            return {"tokens": self._sample_loop(prompt, generate_length, rate, top_k, stream)}

        def reference(inputs: dict) -> dict:
            seed = tf.constant([int(inputs["seed"][0]), 0], tf.int32)
            tokens = self.generate_ids(inputs["prompt"], generate_length, temperature, top_k,
                                       seed)
            return {"tokens": tokens.numpy()}

        seed_spec = tf.TensorSpec([None], tf.int32, name="seed")
        signatures["generate"] = ServingSignature(
            generate, [tf.TensorSpec([None, None], tf.int32, name="prompt"), seed_spec],
            reference)
        if self.vocabulary is not None:
            signatures["generate_text"] = self._text_signature(generate, seed_spec,
                                                               generate_length, temperature,
                                                               top_k)
        return signatures

    def _text_signature(self, generate, seed_spec, generate_length, temperature,
                        top_k) -> ServingSignature:
        characters = list(self.vocabulary)
        first_id = len(text.SPECIAL_TOKENS)
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(characters), tf.range(first_id, first_id + len(characters))), -1)
        # id -> character; the special tokens print as nothing.
        strings = tf.constant([""] * first_id + characters)

        def generate_text(prompt, seed):
            chars = tf.strings.unicode_split(prompt, "UTF-8")
            ids = tf.ragged.map_flat_values(table.lookup, chars).to_tensor(default_value=0)
            tf.debugging.assert_non_negative(
                ids, message="`prompt` holds characters outside the model's vocabulary")
            ids = tf.concat([tf.fill([tf.shape(ids)[0], 1], text.BOS), ids], 1)
            tokens = generate(ids, seed)["tokens"]
            ended = tf.cumsum(tf.cast(tf.logical_or(tokens == text.EOS, tokens == text.PAD)
                                      & (tf.range(tf.shape(tokens)[1]) > 0), tf.int32), 1) > 0
            pieces = tf.where(ended, "", tf.gather(strings, tokens))
            return {"text": tf.strings.reduce_join(pieces, axis=1)}

        def reference(inputs: dict) -> dict:
            prompts = [p.decode() if isinstance(p, bytes) else str(p) for p in inputs["prompt"]]
            ids = self.encode_prompts(prompts)
            seed = tf.constant([int(inputs["seed"][0]), 0], tf.int32)
            tokens = self.generate_ids(ids, generate_length, temperature, top_k, seed).numpy()
            return {"text": np.array([t.encode() for t in text.decode(tokens, self.vocabulary)],
                                     dtype=object)}

        return ServingSignature(generate_text, [tf.TensorSpec([None], tf.string, name="prompt"),
                                                seed_spec], reference, resources=(table,))
