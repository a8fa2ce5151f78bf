"""TokenSampler: sample token ids from logits with temperature, top-k and top-p."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.layers.seed_state import SavesSeedState


def check_sampling(temperature: float, top_k: int | None, top_p: float | None = None) -> None:
    """Check sampling settings given as Python numbers (tensors are the caller's to check).

    Raises:
        ValueError: naming the setting: ``temperature`` < 0, ``top_k`` not a positive
            integer, ``top_p`` outside (0, 1].
    """
    if not tf.is_tensor(temperature):
        _checks.number(temperature, "temperature", 0.0)
    if not tf.is_tensor(top_k):
        _checks.positive_int(top_k, "top_k", allow_none=True)
    if not tf.is_tensor(top_p):
        _checks.number(top_p, "top_p", 0.0, 1.0, low_open=True, allow_none=True)


_GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: keeps a zero input from hashing to zero


def _mix(x: tf.Tensor) -> tf.Tensor:
    """A 32-bit integer hash with good avalanche ("lowbias32", Wellons), in uint32."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = x * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _as_uint32(value: tf.Tensor) -> tf.Tensor:
    value = tf.cast(value, tf.int32)
    return tf.bitcast(value, tf.uint32)


def fold_seed(seed: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    """A new stateless seed (int32 ``[2]``) from ``seed`` and an integer ``value``.

    Integer arithmetic only: the same numbers with and without XLA, on every device (unlike
    TensorFlow's stateless random ops, whose XLA kernels draw other numbers).
    """
    seed, value = _as_uint32(seed), _as_uint32(value)
    key = _mix(_mix(seed[0] + _GOLDEN) ^ seed[1])
    folded = tf.stack([_mix(key ^ _mix(value + _GOLDEN)), _mix(key + value)])
    return tf.bitcast(folded, tf.int32)


def uniform_rows(seed: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """``rows`` uniform numbers in [0, 1) from a stateless seed, float32 (24 random bits)."""
    key = _mix(_mix(_as_uint32(seed[0]) + _GOLDEN) ^ _as_uint32(seed[1]))
    index = tf.cast(tf.range(rows), tf.uint32)
    bits = _mix(key ^ _mix(index + _GOLDEN))
    return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / (1 << 24))


def sample_tokens(logits: tf.Tensor, temperature: float | tf.Tensor = 1.0,
                  top_k: int | tf.Tensor | None = None, seed: tf.Tensor | None = None,
                  top_p: float | tf.Tensor | None = None) -> tf.Tensor:
    """Sample an id along the last axis of ``logits``.

    ``temperature`` divides the logits (0 means greedy: the arg max); ``top_k`` keeps the
    ``k`` largest logits of each row (ties with the ``k``-th included) and ``top_p`` then
    keeps the most likely ids whose probabilities add up to ``top_p``. Each setting may be a
    Python number (checked here) or a scalar tensor (e.g. an input of an exported
    signature), where ``top_k`` 0 and ``top_p`` ≥ 1 keep every id.

    A row's id is drawn by inverting its cumulative distribution at a uniform number from
    :func:`uniform_rows`: integer hashing of the seed, so a seed gives the same ids with and
    without XLA and in an exported SavedModel.

    Args:
        logits: ``[..., vocab]`` unnormalised log-probabilities.
        temperature: ≥ 0; below 1 sharpens, above 1 flattens.
        top_k: Keep only the ``k`` most likely ids (``None``: all).
        seed: A stateless seed, an int32 tensor of shape ``[2]`` (``None``: a random one).
        top_p: Nucleus sampling: keep the most likely ids whose probabilities (after
            temperature and top-k) add up to ``top_p``, at least one (``None``: all).

    Returns:
        int32 ids of shape ``logits.shape[:-1]``.
    """
    check_sampling(temperature, top_k, top_p)
    logits = tf.cast(logits, tf.float32)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if not tf.is_tensor(temperature) and temperature == 0:
        return greedy
    rate = tf.cast(temperature, tf.float32)
    logits = logits / tf.maximum(rate, 1e-6)
    vocab = logits.shape[-1]
    use_k = top_k is not None and (tf.is_tensor(top_k) or top_k < vocab)
    use_p = top_p is not None and (tf.is_tensor(top_p) or top_p < 1)
    if use_k or use_p:
        logits = _truncated(logits, top_k if use_k else None, top_p if use_p else None)
    sampled = _inverse_cdf(logits, seed)
    return tf.where(rate > 0, sampled, greedy) if tf.is_tensor(temperature) else sampled


def _inverse_cdf(logits: tf.Tensor, seed: tf.Tensor | None) -> tf.Tensor:
    """One id per row of ``logits``, drawn from its softmax at a seeded uniform number."""
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    shape = tf.shape(logits)
    flat = tf.reshape(logits, [-1, shape[-1]])
    cumulative = tf.math.cumsum(tf.nn.softmax(flat, axis=-1), axis=-1)
    target = uniform_rows(seed, tf.shape(flat)[0]) * cumulative[:, -1]
    # The first id whose cumulative probability exceeds the target (ids of probability 0
    # can never be it).
    ids = tf.reduce_sum(tf.cast(cumulative <= target[:, None], tf.int32), axis=-1)
    return tf.reshape(tf.minimum(ids, shape[-1] - 1), shape[:-1])


def _truncated(logits: tf.Tensor, top_k: int | tf.Tensor | None,
               top_p: float | tf.Tensor | None) -> tf.Tensor:
    """``logits`` with the ids outside the top ``k`` and the nucleus ``top_p`` at -1e9."""
    removed = tf.constant(-1e9, logits.dtype)
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    if top_k is not None:
        vocab = tf.shape(logits)[-1]
        k = tf.cast(top_k, tf.int32)
        k = tf.where(k > 0, tf.minimum(k, vocab), vocab)  # 0: every id
        kth = tf.gather(ranked, k - 1, axis=-1)[..., None]
        logits = tf.where(logits < kth, removed, logits)
        ranked = tf.where(ranked < kth, removed, ranked)
    if top_p is not None:
        probabilities = tf.nn.softmax(ranked, axis=-1)
        # Mass strictly before each id: the first id is always kept.
        before = tf.math.cumsum(probabilities, axis=-1, exclusive=True)
        kept = tf.where(before < tf.cast(top_p, logits.dtype), ranked, ranked[..., :1])
        smallest = tf.reduce_min(kept, axis=-1, keepdims=True)
        logits = tf.where(logits < smallest, removed, logits)
    return logits


@keras.saving.register_keras_serializable(package="keras_selfevo")
class TokenSampler(SavesSeedState, keras.layers.Layer):
    """A layer that samples token ids from logits (see :func:`sample_tokens`).

    Args:
        temperature: ≥ 0; 0 is greedy decoding.
        top_k: Sample among the ``k`` largest logits (``None``: all).
        seed: Seed of the layer's random generator (``None``: random).
        top_p: Nucleus sampling mass (``None``: all ids).
        **kwargs: Base layer arguments.

    Call arguments:
        logits: ``[..., vocab]`` logits. Returns int32 ids of shape ``logits.shape[:-1]``.
    """

    def __init__(self, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None, top_p: float | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        check_sampling(temperature, top_k, top_p)
        self.temperature = float(temperature)
        self.top_k = top_k
        self.top_p = top_p
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, logits):
        seed = tf.cast(self.seed_generator.next(), tf.int32)
        return sample_tokens(logits, self.temperature, self.top_k, seed, self.top_p)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits.shape[:-1], dtype="int32")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "seed": self.seed,
        }
