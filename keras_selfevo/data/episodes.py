"""``episodes``: N-way K-shot classification tasks drawn from any labeled dataset."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.lazy import tfp
from keras_selfevo.data.pipeline import untuned
from keras_selfevo.data.sinusoid import check_stream_position

ROTATIONS = 4  # 0, 90, 180 and 270 degrees.


def _materialize(labeled: tf.data.Dataset, image_key: str, label_key: str):
    """All images of a finite dataset as one tensor, and their labels as a NumPy vector.

    The images stay in the tensors ``tf.data`` batched them into: a dataset of up to 4096
    examples is not copied again, a larger one once (their concatenation).
    """
    images, labels = [], []
    for element in labeled.batch(4096):
        if isinstance(element, Mapping):
            missing = {image_key, label_key} - set(element)
            if missing:
                raise ValueError(
                    f"`labeled_dataset` elements are dicts without {sorted(missing)}; set "
                    "`image_key` / `label_key`."
                )
            image, label = element[image_key], element[label_key]
        elif isinstance(element, tuple) and len(element) == 2:
            image, label = element
        else:
            raise ValueError(
                "`labeled_dataset` must yield (image, label) pairs or dicts of features."
            )
        images.append(image)
        labels.append(np.asarray(label).reshape(-1))
    if not images:
        raise ValueError("`labeled_dataset` is empty.")
    if len(images) == 1:
        return images[0], labels[0]
    return tf.concat(images, axis=0), np.concatenate(labels)


def _by_class(labels: np.ndarray, rotations: bool):
    """Where each class's examples are: ``[classes, max_count]`` indices into the dataset.

    Row ``c`` lists class ``c``'s examples in dataset order (padded with 0 after its
    ``counts[c]`` entries). With ``rotations``, each class is followed by its three rotations
    as classes of their own (the same indices; ``c % 4`` quarter turns). Returns the index
    table, each class's count and its original label. Only indices are arranged: the images
    are never copied.
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # Each example's position within its class, in dataset order (a stable sort by class).
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(len(inverse), np.int64)
    position[order] = np.arange(len(inverse)) - starts[inverse[order]]
    table = np.zeros((len(classes), counts.max()), np.int64)
    table[inverse, position] = np.arange(len(inverse))
    if rotations:
        table = np.repeat(table, ROTATIONS, axis=0)
        counts = np.repeat(counts, ROTATIONS)
        classes = np.repeat(classes, ROTATIONS)
    return table, counts, classes


def _turned(images: tf.Tensor, quarter_turns: tf.Tensor) -> tf.Tensor:
    """``images`` ``[n, height, width, ...]`` each turned counter-clockwise by its count."""
    flat = tf.reshape(images, tf.concat([tf.shape(images)[:3], [-1]], 0))  # [n, h, w, rest]
    turned = tf.stack([tf.image.rot90(flat, k) for k in range(ROTATIONS)])
    picked = tf.gather_nd(turned, tf.stack([quarter_turns, tf.range(tf.shape(images)[0])], -1))
    return tf.reshape(picked, tf.shape(images))


def episodes(
    labeled_dataset: tf.data.Dataset,
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    meta_batch_size: int = 32,
    *,
    rotations: bool = False,
    seed: int = 0,
    num_meta_batches: int | None = None,
    first_meta_batch: int = 0,
    image_key: str = "image",
    label_key: str = "label",
) -> tf.data.Dataset:
    """N-way K-shot tasks from a labeled dataset, batched into meta-batches.

    Each task draws ``ways`` distinct classes, then ``shots + queries`` distinct examples of
    each; its labels are remapped to ``0 .. ways - 1`` in a random order, so a label says
    nothing across tasks. With ``rotations=True`` every class also appears rotated by 90,
    180 and 270 degrees, each rotation a new class (the Omniglot benchmark augmentation).
    Tasks come from stateless seeds: meta-batch ``i`` is the same for the same ``seed``.

    The dataset is read into memory once, as the tensors ``tf.data`` batches it into (one
    copy of the images, which tasks gather from; classes are a table of indices, and
    rotations are applied to the drawn images). Integer images are scaled to float32 in
    [0, 1].

    Args:
        labeled_dataset: A finite dataset of ``(image, label)`` pairs or of feature dicts
            (e.g. ``kse.data.load("selfevo_glyphs", split="train")``).
        ways: Classes per task (N).
        shots: Support examples per class (K).
        queries: Query examples per class.
        meta_batch_size: Tasks per element.
        rotations: Add the three rotations of each class as new classes.
        seed: Seed of the task stream.
        num_meta_batches: Elements in the dataset (``None``: endless).
        first_meta_batch: Index of the first element, to resume a stream.
        image_key: The image feature of dict elements.
        label_key: The label feature of dict elements.

    Returns:
        A dataset of ``((support_x, support_y), (query_x, query_y))``: images
        ``[meta_batch_size, ways * shots (or queries), ...]`` float32, labels int32; the
        examples of a task are grouped by class.

    Raises:
        ValueError: a class holds fewer than ``shots + queries`` examples, ``ways`` exceeds
            the number of classes, or an argument is not a positive integer.
    """
    if not isinstance(labeled_dataset, tf.data.Dataset):
        raise ValueError(
            f"`labeled_dataset` must be a tf.data.Dataset, got {type(labeled_dataset).__name__}."
        )
    for name, value in (("ways", ways), ("shots", shots), ("queries", queries),
                        ("meta_batch_size", meta_batch_size)):
        _checks.positive_int(value, name)
    check_stream_position(num_meta_batches, first_meta_batch)

    images, labels = _materialize(labeled_dataset, image_key, label_key)
    if rotations and (images.shape.rank < 3 or images.shape[1] != images.shape[2]):
        raise ValueError(f"`rotations` needs square images, got shape {images.shape[1:]}.")
    table, counts, class_labels = _by_class(labels, rotations)
    per_class = shots + queries
    if counts.min() < per_class:
        smallest = int(np.argmin(counts))
        raise ValueError(
            f"`shots` + `queries` = {per_class} examples per class, but class "
            f"{class_labels[smallest]} holds only {counts[smallest]}."
        )
    if ways > len(counts):
        raise ValueError(
            f"`ways`={ways} is more than the {len(counts)} classes in `labeled_dataset`"
            + (" (with rotations)." if rotations else ".")
        )

    scale = 1.0 / 255.0 if images.dtype.is_integer else 1.0
    table = tf.constant(table, tf.int32 if len(labels) < 2**31 else tf.int64)
    counts = tf.constant(counts, tf.int32)
    num_classes, max_count = table.shape[0], table.shape[1]

    def task(index: tf.Tensor):
        stream = tf.stack([tf.constant(seed, tf.int32), tf.cast(index % (2**31 - 1), tf.int32)])
        class_seed, example_seed = tfp.random.split_seed(stream, n=2)
        # A random permutation's first `ways` entries: distinct classes, random label order.
        chosen = tf.argsort(tf.random.stateless_uniform([num_classes], class_seed))[:ways]
        keys = tf.random.stateless_uniform([ways, max_count], example_seed)
        valid = tf.range(max_count)[None, :] < tf.gather(counts, chosen)[:, None]
        picks = tf.argsort(tf.where(valid, keys, 2.0), axis=1)[:, :per_class]
        rows = tf.broadcast_to(chosen[:, None], picks.shape)
        flat = lambda t: tf.reshape(t, tf.concat([[-1], tf.shape(t)[2:]], 0))  # noqa: E731
        x = tf.gather(images, tf.gather_nd(table, tf.stack([rows, picks], axis=-1)))
        if rotations:
            x = tf.reshape(_turned(flat(x), tf.reshape(rows % ROTATIONS, [-1])), tf.shape(x))
        x = tf.cast(x, tf.float32) * scale
        y = tf.broadcast_to(tf.range(ways, dtype=tf.int32)[:, None], [ways, per_class])
        return ((flat(x[:, :shots]), flat(y[:, :shots])),
                (flat(x[:, shots:]), flat(y[:, shots:])))

    first = first_meta_batch * meta_batch_size
    end = first + num_meta_batches * meta_batch_size if num_meta_batches else 2**62
    tasks = tf.data.Dataset.range(first, end)
    tasks = tasks.map(task, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return untuned(tasks.batch(meta_batch_size, drop_remainder=True))
