"""GPT: a decoder-only Transformer language model built from keras-hub layers."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.lazy import keras_hub
from keras_selfevo.zoo import decoding
from keras_selfevo.zoo.language_model import LanguageModel
from keras_selfevo.zoo.seeding import seeded


@keras.saving.register_keras_serializable(package="keras_selfevo")
class GPT(LanguageModel):
    """Token + position embedding → pre-LayerNorm causal Transformer blocks → tied logits.

    nanoGPT's architecture with keras-hub's layers: ``TokenAndPositionEmbedding``, then
    ``num_layers`` × ``TransformerDecoder`` (causal self-attention, GELU MLP of
    ``4 * width``, LayerNorm before each sub-layer), a final LayerNorm, and logits from the
    transposed token embedding (tied weights). Outputs ``{"self": logits, "policy":
    softmax(logits)}`` of shape ``[batch, time, vocab]``; ``time`` is at most
    ``block_size``, and generation beyond it sees the last ``block_size`` tokens.

    Args:
        vocab_size: Number of token ids; derived from ``vocabulary`` when that is given.
        vocabulary: The characters (ids follow ``<pad>``, ``<bos>``, ``<eos>``).
        num_layers: Transformer blocks.
        num_heads: Attention heads; must divide ``width``.
        width: Embedding width.
        block_size: Longest input (positions of the position embedding).
        dropout: Dropout in the blocks (attention, MLP, residual).
        **kwargs: Base ``keras.Model`` arguments.
    """

    def __init__(self, vocab_size: int | None = None, vocabulary: str | None = None,
                 num_layers: int = 4, num_heads: int = 4, width: int = 128,
                 block_size: int = 64, dropout: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self._set_vocabulary(vocab_size, vocabulary)
        for name, value in (("num_layers", num_layers), ("num_heads", num_heads),
                            ("width", width), ("block_size", block_size)):
            _checks.positive_int(value, name)
        if width % num_heads:
            raise ValueError(f"`num_heads`={num_heads} must divide `width`={width}.")
        _checks.number(dropout, "dropout", 0.0, 1.0, high_open=True, kind="a float")
        self.num_layers, self.num_heads, self.width = num_layers, num_heads, width
        self.block_size, self.dropout = block_size, float(dropout)
        self.context_window = block_size
        policy = self.dtype_policy
        self.embedding = keras_hub.layers.TokenAndPositionEmbedding(
            self.vocab_size, block_size, width, tie_weights=True,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=policy, name="embedding")
        self.blocks = [
            keras_hub.layers.TransformerDecoder(
                4 * width, num_heads, dropout=self.dropout, activation="gelu",
                normalize_first=True, layer_norm_epsilon=1e-5,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                dtype=policy, name=f"block{i}")
            for i in range(num_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy,
                                                          name="final_norm")

    def build(self, input_shape) -> None:
        # Every input length up to block_size: the layers are built for the longest.
        shape = (input_shape[0], self.block_size)
        self.embedding.build(shape)
        for block in self.blocks:
            block.build(shape + (self.width,))
        self.final_norm.build(shape + (self.width,))
        self.built = True

    def call(self, tokens, training: bool | None = None) -> dict:
        self._check_context(tokens)
        if self.context_window is not None and not isinstance(tokens, keras.KerasTensor):
            tf.debugging.assert_less_equal(
                tf.shape(tokens)[1], self.block_size,
                message=f"`tokens` is longer than the model's `block_size` ({self.block_size})")
        return self._outputs(self.logits(self.features(tokens, training=training)))

    def features(self, tokens, training: bool | None = None):
        """The last layer's states ``[batch, time, width]`` (before the tied output layer)."""
        h = self.embedding(tokens)
        for block in self.blocks:
            h = block(h, training=training)
        return self.final_norm(h)

    def logits(self, features):
        """Next-token logits of :meth:`features`: the transposed token embedding."""
        return self.embedding.token_embedding(features, reverse=True)

    # ------------------------------------------------------------------------- decoding
    def _cached_logits(self, tokens, caches: list, index) -> tuple:
        """Logits of ``tokens`` placed at cache slots ``index...``, and the updated caches."""
        h = self.embedding(tokens, start_index=index)
        updated = []
        for block, cache in zip(self.blocks, caches):
            h, cache = block(h, self_attention_cache=cache,
                             self_attention_cache_update_index=index, training=False)
            updated.append(cache)
        logits = self.embedding.token_embedding(self.final_norm(h), reverse=True)
        return self._outputs(logits)["self"][:, -1], updated

    def decoding_start(self, tokens, start) -> tuple:
        """Fill a key/value cache of ``block_size`` slots with the prompt (≤ a block)."""
        shape = [tf.shape(tokens)[0], 2, self.block_size, self.num_heads,
                 self.width // self.num_heads]
        caches = [tf.zeros(shape, self.blocks[0].compute_dtype) for _ in self.blocks]
        logits, caches = self._cached_logits(tokens[:, :start], caches, 0)
        return logits, (caches, tf.constant(0))

    def decoding_step(self, tokens, t, state) -> tuple:
        """Add ``tokens[:, t]`` to the cache; when it is full, rebuild it from the last tokens.

        The state is the caches and the position of the window's first token; the window
        slides as :mod:`keras_selfevo.zoo.decoding` describes.
        """
        caches, first = state
        slot = t - first

        def append():
            logits, updated = self._cached_logits(tf.slice(tokens, [0, t], [-1, 1]), caches,
                                                  slot)
            return logits, updated, first

        def rebuild():
            keep = decoding.sliding_keep(self.block_size)
            begin = t - keep + 1
            # Padded: a compiled graph holds this branch even for buffers shorter than
            # `keep`, where it never runs.
            window = tf.slice(tf.pad(tokens, [[0, 0], [0, keep]]), [0, begin], [-1, keep])
            logits, updated = self._cached_logits(window, caches, 0)
            return logits, updated, begin

        logits, caches, first = tf.cond(slot < self.block_size, append, rebuild)
        return logits, (caches, first)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "width": self.width,
            "block_size": self.block_size,
            "dropout": self.dropout,
        }


def gpt(vocab_size: int | None = None, vocabulary: str | None = None, num_layers: int = 4,
        num_heads: int = 4, width: int = 128, block_size: int = 64, dropout: float = 0.0,
        seed: int | None = None) -> GPT:
    """A decoder-only Transformer on keras-hub layers (:class:`GPT`), built.

    The defaults are nanoGPT's CPU "baby GPT": 4 layers, 4 heads, width 128, block 64.
    """
    seeded(seed)
    model = GPT(vocab_size=vocab_size, vocabulary=vocabulary, num_layers=num_layers,
                num_heads=num_heads, width=width, block_size=block_size, dropout=dropout)
    model.build((None, None))
    return model


# What the model reads from your own files (`keras-selfevo ... --data PATH`).
gpt.data_kind = "text"
