"""CharRNN: a character language model trained as a SelfEvolvingModel."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import _checks
from keras_selfevo.data import text
from keras_selfevo.layers import RecurrentBlock, sample_tokens
from keras_selfevo.training import SelfEvolvingModel
from keras_selfevo.training.serving import (
    ServingSignature,
    predict_signatures,
    self_policy_outputs,
)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class CharRNN(SelfEvolvingModel):
    """Embedding → recurrent layers → Dense over the vocabulary, with a sampler.

    Outputs ``{"self": logits, "policy": softmax(logits)}``, both ``[batch, time, vocab]``.
    Self-supervised training is next-token prediction: the self target is the one-hot
    next token (:func:`keras_selfevo.data.language_model_examples` makes it), scored with
    binary cross-entropy (compile with ``self_from_logits=True``). The self-evolution loop
    regresses ``"policy"`` toward the sampled tokens, weighted by reward.

    Args:
        vocab_size: Number of token ids; derived from ``vocabulary`` when that is given.
        vocabulary: The characters (ids follow ``<pad>``, ``<bos>``, ``<eos>``); lets
            :meth:`generate` take and return strings.
        embed_dim: Embedding width.
        units: Units of each recurrent layer.
        num_layers: Stacked recurrent layers.
        cell: ``"gru"``, ``"lstm"`` or ``"simple_rnn"``.
        dropout: Dropout on the recurrent layers' inputs.
        **kwargs: Base ``keras.Model`` arguments.
    """

    def __init__(self, vocab_size: int | None = None, vocabulary: str | None = None,
                 embed_dim: int = 32, units: int = 128, num_layers: int = 1, cell: str = "gru",
                 dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if vocabulary is not None:
            derived = text.vocab_size(vocabulary)
            if vocab_size is not None and vocab_size != derived:
                raise ValueError(
                    f"`vocab_size`={vocab_size} does not match `vocabulary` ({derived} ids)."
                )
            vocab_size = derived
        if vocab_size is None:
            raise ValueError("Give `vocab_size` or `vocabulary`.")
        self.vocab_size = vocab_size
        self.vocabulary = vocabulary
        self.embed_dim = embed_dim
        self.units = units
        self.num_layers = num_layers
        self.cell = cell
        self.dropout = dropout
        self.body = RecurrentBlock(vocab_size, embed_dim, units, num_layers, cell, dropout,
                                   dtype=self.dtype_policy, name="recurrent")
        self.head = keras.layers.Dense(vocab_size, dtype=self.dtype_policy, name="logits")
        self._generate_fns: dict = {}

    def build(self, input_shape) -> None:
        self.body.build(input_shape)
        self.head.build(tuple(input_shape) + (self.units,))
        self.built = True

    def call(self, tokens, training: bool | None = None) -> dict:
        logits = self.head(self.body(tokens, training=training))
        logits = keras.ops.cast(logits, "float32")
        return {"self": logits, "policy": keras.ops.softmax(logits, axis=-1)}

    def compile(self, optimizer="adam", alpha=1.0, **kwargs) -> None:
        """Like :meth:`SelfEvolvingModel.compile`, with ``self_from_logits=True``."""
        kwargs.setdefault("self_from_logits", True)
        super().compile(optimizer=optimizer, alpha=alpha, **kwargs)

    # --------------------------------------------------------------------------- sampling
    def generate_ids(self, prompt: tf.Tensor, length: int, temperature: float | tf.Tensor = 1.0,
                     top_k: int | None = None, seed: tf.Tensor | None = None) -> tf.Tensor:
        """Append ``length`` sampled tokens to ``prompt`` (int ids ``[batch, time]``).

        Runs as one graph (a while loop over positions; the shapes are fixed, so new prompts
        of the same length do not retrace). ``temperature`` 0 is greedy.

        Returns:
            int32 ids ``[batch, time + length]``.
        """
        _checks.positive_int(length, "length")
        key = (length, top_k)
        if key not in self._generate_fns:
            self._generate_fns[key] = tf.function(
                lambda p, t, s: self._sample_loop(p, length, t, top_k, s), reduce_retracing=True
            )
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32) if seed is None else seed
        return self._generate_fns[key](tf.cast(prompt, tf.int32),
                                       tf.cast(temperature, tf.float32),
                                       tf.cast(seed, tf.int32))

    def _sample_loop(self, prompt, length, temperature, top_k, seed) -> tf.Tensor:
        start = tf.shape(prompt)[1]
        total = start + length
        tokens = tf.concat([prompt, tf.zeros([tf.shape(prompt)[0], length], tf.int32)], 1)
        positions = tf.range(total)[None, :]

        def step(t, tokens):
            # The network is causal: position t - 1 sees only tokens before t.
            logits = self(tokens, training=False)["self"][:, t - 1]
            new = sample_tokens(logits, temperature, top_k,
                                tf.random.experimental.stateless_fold_in(seed, t))
            return t + 1, tf.where(positions == t, new[:, None], tokens)

        _, tokens = tf.while_loop(lambda t, _: t < total, step, (start, tokens))
        return tokens

    def generate(self, prompts: Sequence[str] | np.ndarray, length: int,
                 temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None) -> list[str] | np.ndarray:
        """Sample continuations of ``prompts``.

        Args:
            prompts: Strings (with a ``vocabulary``; each starts after ``<bos>``; all must
                have the same length) or an int array of token ids ``[batch, time]``.
            length: Tokens to sample after each prompt.
            temperature: ≥ 0; 0 is greedy decoding.
            top_k: Sample among the ``k`` most likely tokens (``None``: all).
            seed: Makes the samples reproducible.

        Returns:
            Strings (prompt + continuation, cut at ``<eos>``) for string prompts, else the
            token ids ``[batch, time + length]``.
        """
        as_text = len(prompts) > 0 and isinstance(prompts[0], str)
        if as_text:
            if self.vocabulary is None:
                raise ValueError("String `prompts` need a model built with a `vocabulary`.")
            if len({len(p) for p in prompts}) > 1:
                raise ValueError("String `prompts` must all have the same length.")
            ids = text.encode(prompts, self.vocabulary, add_end=False)
        else:
            ids = np.asarray(prompts)
            if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"`prompts` must be int ids [batch, time], got {ids.shape}.")
        seed_tensor = None if seed is None else tf.constant([seed, 0], tf.int32)
        out = self.generate_ids(ids, length, temperature, top_k, seed_tensor).numpy()
        return text.decode(out, self.vocabulary) if as_text else out

    def serving_signatures(self, generate_length: int = 32, temperature: float = 1.0,
                           top_k: int | None = None) -> dict[str, ServingSignature]:
        """``serving_default`` / ``serve`` on token ids, and ``generate``.

        ``generate`` takes ``prompt`` (int32 ids ``[batch, time]``) and ``seed`` (int32
        ``[batch]``; the first row's seed drives the batch) and returns ``tokens``: the
        prompt followed by ``generate_length`` tokens sampled at ``temperature``, ``top_k``.
        """
        signatures = predict_signatures(
            self, [tf.TensorSpec([None, None], tf.int32, name="tokens")], self_policy_outputs)
        _checks.positive_int(generate_length, "generate_length")

        def generate(prompt, seed):
            stream = tf.stack([seed[0], tf.constant(0, tf.int32)])
            return {"tokens": self._sample_loop(prompt, generate_length, tf.constant(
                temperature, tf.float32), top_k, stream)}

        def reference(inputs: dict) -> dict:
            seed = tf.constant([int(inputs["seed"][0]), 0], tf.int32)
            tokens = self.generate_ids(inputs["prompt"], generate_length, temperature, top_k,
                                       seed)
            return {"tokens": tokens.numpy()}

        signatures["generate"] = ServingSignature(
            generate, [tf.TensorSpec([None, None], tf.int32, name="prompt"),
                       tf.TensorSpec([None], tf.int32, name="seed")], reference)
        return signatures

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "vocabulary": self.vocabulary,
            "embed_dim": self.embed_dim,
            "units": self.units,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "dropout": self.dropout,
        }
