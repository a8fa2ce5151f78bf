"""TokenSampler: sample token ids from logits with temperature and top-k."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.lazy import tfp
from keras_selfevo.layers.seed_state import SavesSeedState


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None = None) -> None:
    _checks.number(temperature, "temperature", 0.0)
    _checks.positive_int(top_k, "top_k", allow_none=True)
    _checks.number(top_p, "top_p", 0.0, 1.0, low_open=True, allow_none=True)


def sample_tokens(logits: tf.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  seed: tf.Tensor | None = None, top_p: float | None = None) -> tf.Tensor:
    """Sample an id along the last axis of ``logits``.

    ``temperature`` divides the logits (0 means greedy: the arg max); ``top_k`` keeps the
    ``k`` largest logits of each row and samples among them. Sampling uses
    ``tfp.distributions.Categorical``.

    Args:
        logits: ``[..., vocab]`` unnormalised log-probabilities.
        temperature: ≥ 0 (a number or a scalar tensor); below 1 sharpens, above 1 flattens.
        top_k: Keep only the ``k`` most likely ids (``None``: all).
        seed: A stateless seed, an int32 tensor of shape ``[2]`` (``None``: stateful).
        top_p: Nucleus sampling: keep the most likely ids whose probabilities (after
            temperature and top-k) add up to ``top_p``, at least one (``None``: all).

    Returns:
        int32 ids of shape ``logits.shape[:-1]``.
    """
    dynamic = tf.is_tensor(temperature)
    _check_sampling(1.0 if dynamic else temperature, top_k, top_p)
    logits = tf.cast(logits, tf.float32)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if not dynamic and temperature == 0:
        return greedy
    temperature = tf.cast(temperature, tf.float32)
    logits = logits / tf.maximum(temperature, 1e-6)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = tf.math.top_k(logits, k=top_k).values[..., -1:]
        logits = tf.where(logits < kth, tf.constant(-1e9, logits.dtype), logits)
    if top_p is not None and top_p < 1:
        order = tf.argsort(logits, axis=-1, direction="DESCENDING")
        sorted_logits = tf.gather(logits, order, batch_dims=logits.shape.rank - 1)
        probabilities = tf.nn.softmax(sorted_logits, axis=-1)
        # Mass strictly before each id: the first id is always kept.
        before = tf.math.cumsum(probabilities, axis=-1, exclusive=True)
        sorted_logits = tf.where(before >= top_p, tf.constant(-1e9, logits.dtype),
                                 sorted_logits)
        inverse = tf.argsort(order, axis=-1)
        logits = tf.gather(sorted_logits, inverse, batch_dims=logits.shape.rank - 1)
    sampled = tfp.distributions.Categorical(logits=logits, dtype=tf.int32).sample(seed=seed)
    return tf.where(temperature > 0, sampled, greedy) if dynamic else sampled


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
                 seed: int | None = None, top_p: float | None = None, **kwargs):
        super().__init__(**kwargs)
        _check_sampling(temperature, top_k, top_p)
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
