"""Options shared by the package's ``tf.data`` pipelines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import tensorflow as tf


def untuned(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with ``tf.data``'s autotuning switched off.

    Autotuning runs a background thread per iterator that models the pipeline, and
    TensorFlow waits for that thread when the iterator is destroyed: at the end of every
    ``fit``, ``evaluate`` and epoch over a finite dataset. On 2 CPU cores that wait was
    0.6–2.3 s per iterator (``benchmarks/README.md``), longer than the whole input work of
    the package's pipelines, which gather, cut and sample in-memory tensors. Without it, a
    ``num_parallel_calls=tf.data.AUTOTUNE`` map runs on as many threads as there are cores
    and ``prefetch(tf.data.AUTOTUNE)`` keeps its own buffer tuning.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def numpy_elements(dataset: tf.data.Dataset) -> Iterator[Any]:
    """The elements of ``dataset`` as NumPy values, read by an untuned iterator.

    For reading a dataset into memory once: without autotuning its iterator has no model
    thread, so dropping it (at the end of the pass, or later in a garbage collection) does
    not wait for one.
    """
    return untuned(dataset).as_numpy_iterator()
