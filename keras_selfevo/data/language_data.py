"""Language-model data from token streams: random training windows and few-shot text tasks.

A stream is one text's token ids (``kse.data.text.encode_stream``), e.g. one play of
``selfevo_shakespeare``. :func:`window_batches` cuts random next-token windows from one
stream for ``fit``; :func:`text_tasks` makes meta-learning tasks, one text per task, for
:class:`~keras_selfevo.MetaLearner`; :func:`shakespeare_streams` reads the plays of a split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.lazy import tfp
from keras_selfevo.data import shakespeare, text
from keras_selfevo.data.pipeline import untuned
from keras_selfevo.data.sinusoid import check_stream_position


def window_batches(ids: np.ndarray, window: int, batch_size: int, seed: int, first_step: int,
                   steps: int) -> tf.data.Dataset:
    """Batches ``first_step .. steps - 1`` of random windows ``(x, {"self": next ids})``.

    Batch ``i``'s offsets come from the generator seeded ``(seed, i)``, so a resumed run sees
    the batches an uninterrupted one would. The windows are cut in NumPy before training (a
    few MB): on 2 cores, cutting them in the ``tf.data`` pipeline slowed training steps by a
    third.

    Raises:
        ValueError: the stream is not longer than one window plus its next token.
    """
    _checks.positive_int(window, "window")
    _checks.positive_int(batch_size, "batch_size")
    limit = len(ids) - window - 1
    if limit < 1:
        raise ValueError(f"The text holds {len(ids)} tokens: it must be longer than a window "
                         f"of {window} + 1.")
    offsets = np.stack([np.random.default_rng([seed, step]).integers(0, limit, batch_size)
                        for step in range(first_step, steps)])
    tokens = np.asarray(ids, np.int32)[offsets[:, :, None] + np.arange(window + 1)]
    return untuned(tf.data.Dataset.from_tensor_slices(
        (tokens[:, :, :-1], {"self": tokens[:, :, 1:]})).prefetch(4))


def shakespeare_streams(split: str) -> dict[str, np.ndarray]:
    """The token ids of every play's part in a ``selfevo_shakespeare`` split, by genre/slug.

    ``"train"`` and ``"validation"`` hold the 32 training plays (their first 90% and last
    10%), ``"test"`` the six held-out plays, whole.
    """
    vocabulary = shakespeare.vocabulary()
    return {name: text.encode_stream(part, vocabulary)
            for name, part in shakespeare.split_parts(split)}


def text_tasks(
    streams: Sequence[np.ndarray],
    shots: int = 8,
    queries: int = 8,
    window: int = 64,
    meta_batch_size: int = 8,
    *,
    region: int | None = None,
    seed: int = 0,
    num_meta_batches: int | None = None,
    first_meta_batch: int = 0,
) -> tf.data.Dataset:
    """Few-shot language-modelling tasks: each task is one text, adapted to from a few windows.

    A task draws one stream (uniformly), cuts it into consecutive regions of ``region``
    tokens and picks two different regions: ``shots`` random windows inside the first are
    its support set, ``queries`` random windows inside the second its query set. A window
    and its next-token targets lie inside their region, so support and query never share a
    token. Tasks come from stateless seeds: meta-batch ``i`` is the same for the same
    ``seed``, whatever the reading order.

    Args:
        streams: Token-id arrays, one per text (e.g. ``shakespeare_streams("train")``).
        shots: Support windows per task (K).
        queries: Query windows per task.
        window: Tokens per window (the model's input length).
        meta_batch_size: Tasks per element.
        region: Tokens per region (default ``16 * window``); at least ``window + 1``.
        seed: Seed of the task stream.
        num_meta_batches: Elements in the dataset (``None``: endless).
        first_meta_batch: Index of the first element, to resume a stream.

    Returns:
        A dataset of ``((support_x, support_y), (query_x, query_y))``: int32 ids
        ``[meta_batch_size, shots (or queries), window]``, each ``y`` the next ids of its
        ``x``.

    Raises:
        ValueError: an argument is not a positive integer, ``region`` is shorter than a
            window plus its target, or a stream holds fewer than two regions (named by
            its index).
    """
    for name, value in (("shots", shots), ("queries", queries), ("window", window),
                        ("meta_batch_size", meta_batch_size)):
        _checks.positive_int(value, name)
    region = 16 * window if region is None else _checks.positive_int(region, "region")
    if region < window + 1:
        raise ValueError(f"`region`={region} must be at least `window` + 1 = {window + 1}.")
    check_stream_position(num_meta_batches, first_meta_batch)
    streams = [np.asarray(s, np.int32).reshape(-1) for s in streams]
    if not streams:
        raise ValueError("`streams` is empty: give at least one text's token ids.")
    regions = np.array([len(s) // region for s in streams])
    short = np.flatnonzero(regions < 2)
    if short.size:
        raise ValueError(
            f"`streams`[{short[0]}] holds {len(streams[short[0]])} tokens, fewer than two "
            f"regions of {region}; give longer texts or a smaller `region`.")
    starts = tf.constant(np.concatenate([[0], np.cumsum([len(s) for s in streams])[:-1]]),
                         tf.int64)
    flat = tf.constant(np.concatenate(streams))
    counts = tf.constant(regions, tf.int32)
    last_start = region - window - 1  # A window's first token lies in [0, last_start].
    span = tf.range(window + 1, dtype=tf.int64)

    def windows(base, first, seed_pair, count):
        offsets = tf.random.stateless_uniform([count], seed_pair, 0, last_start + 1, tf.int32)
        positions = base + tf.cast(first + offsets, tf.int64)[:, None] + span
        tokens = tf.gather(flat, positions)
        return tokens[:, :-1], tokens[:, 1:]

    def task(index: tf.Tensor):
        stream = tf.stack([tf.constant(seed, tf.int32), tf.cast(index % (2**31 - 1), tf.int32)])
        text_seed, region_seed, support_seed, query_seed = tfp.random.split_seed(stream, n=4)
        which = tf.random.stateless_uniform([], text_seed, 0, len(streams), tf.int32)
        count = counts[which]
        picks = tf.random.stateless_uniform([2], region_seed, 0, 2**30, tf.int32)
        first = picks[0] % count
        second = picks[1] % (count - 1)
        second = second + tf.cast(second >= first, tf.int32)  # Distinct from `first`.
        return (windows(starts[which], first * region, support_seed, shots),
                windows(starts[which], second * region, query_seed, queries))

    first = first_meta_batch * meta_batch_size
    end = first + num_meta_batches * meta_batch_size if num_meta_batches else 2**62
    tasks = tf.data.Dataset.range(first, end)
    tasks = tasks.map(task, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return untuned(tasks.batch(meta_batch_size, drop_remainder=True).prefetch(2))
