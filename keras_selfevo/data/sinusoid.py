"""The sinusoid regression tasks of the MAML paper, as a tf.data dataset of meta-batches."""

from __future__ import annotations

import math

import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.lazy import tfp
from keras_selfevo.data.pipeline import untuned


def check_stream_position(num_meta_batches: int | None, first_meta_batch: int) -> None:
    """Check the length and start of a task stream."""
    _checks.positive_int(num_meta_batches, "num_meta_batches", allow_none=True)
    _checks.non_negative_int(first_meta_batch, "first_meta_batch")


def sinusoid_tasks(
    shots: int = 10,
    queries: int = 10,
    meta_batch_size: int = 25,
    seed: int = 0,
    num_meta_batches: int | None = None,
    first_meta_batch: int = 0,
) -> tf.data.Dataset:
    """Sinusoid regression tasks of the MAML paper, ``y = A sin(x - phase)``.

    Amplitude ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5], sampled with
    ``tensorflow_probability`` distributions from stateless seeds: meta-batch ``i`` is the
    same for the same ``seed``, whatever was read before it.

    Args:
        shots: Support examples per task (K).
        queries: Query examples per task.
        meta_batch_size: Tasks per element.
        seed: Seed of the whole stream.
        num_meta_batches: Elements in the dataset (``None``: endless).
        first_meta_batch: Index of the first element, to resume a stream where it stopped.

    Returns:
        A dataset of ``((support_x, support_y), (query_x, query_y))``, float32, shaped
        ``(meta_batch_size, shots or queries, 1)``.
    """
    for name, value in (("shots", shots), ("queries", queries),
                        ("meta_batch_size", meta_batch_size)):
        _checks.positive_int(value, name)
    check_stream_position(num_meta_batches, first_meta_batch)

    def sample(index: tf.Tensor):
        stream = tf.stack([tf.constant(seed, tf.int32), tf.cast(index % (2**31 - 1), tf.int32)])
        amp_seed, phase_seed, x_seed = tfp.random.split_seed(stream, n=3)
        tfd = tfp.distributions
        amplitude = tfd.Uniform(0.1, 5.0).sample([meta_batch_size, 1, 1], seed=amp_seed)
        phase = tfd.Uniform(0.0, math.pi).sample([meta_batch_size, 1, 1], seed=phase_seed)
        x = tfd.Uniform(-5.0, 5.0).sample([meta_batch_size, shots + queries, 1], seed=x_seed)
        y = amplitude * tf.sin(x - phase)
        return (x[:, :shots], y[:, :shots]), (x[:, shots:], y[:, shots:])

    end = first_meta_batch + num_meta_batches if num_meta_batches else 2**31 - 1
    indices = tf.data.Dataset.range(first_meta_batch, end)
    return untuned(indices.map(sample, num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=True))
