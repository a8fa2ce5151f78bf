"""selfevo_glyphs: generation rate, and TFDS reading relative to an in-memory pipeline.

Reference: ``tf.data.Dataset.from_tensor_slices`` over the same images, already decoded in
memory, with the same batching and preprocessing. The ratio says what reading the prepared
TFDS records costs an input pipeline.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from common import median_seconds, parse_args, report  # noqa: E402

from keras_selfevo.data import glyph_drawing  # noqa: E402


def _epoch(ds: tf.data.Dataset) -> int:
    count = 0
    for images, _ in ds:
        count += int(images.shape[0])
    return count


def _pipeline(ds: tf.data.Dataset) -> tf.data.Dataset:
    return ds.map(
        lambda image, label: (tf.cast(image, tf.float32) / 255.0, label),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).batch(64).prefetch(tf.data.AUTOTUNE)


def main() -> None:
    args = parse_args(__doc__)
    classes = 40 if args.quick else 200
    start = time.perf_counter()
    for index in range(classes):
        glyph_drawing.draw_class(seed=0, alphabet=index // 20, index=index, num_samples=20)
    draw_rate = classes * 20 / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as data_dir:
        config = "small" if args.quick else "default"
        builder = tfds.builder(f"selfevo_glyphs/{config}", data_dir=data_dir)
        start = time.perf_counter()
        builder.download_and_prepare()
        prepare_seconds = time.perf_counter() - start
        split = "train"
        arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        images, labels = np.asarray(arrays[0]), np.asarray(arrays[1])

        tfds_ds = _pipeline(builder.as_dataset(split=split, as_supervised=True))
        memory_ds = _pipeline(tf.data.Dataset.from_tensor_slices((images, labels)))
        tfds_seconds = median_seconds(lambda: _epoch(tfds_ds), args.repeats)
        memory_seconds = median_seconds(lambda: _epoch(memory_ds), args.repeats)

    n = len(images)
    rows = [
        {"what": "draw glyphs (NumPy)", "images/s": draw_rate, "ratio vs reference": "-"},
        {"what": f"prepare selfevo_glyphs/{config} (3 splits)",
         "images/s": builder.info.splits.total_num_examples / prepare_seconds,
         "ratio vs reference": "-"},
        {"what": "read train via TFDS + tf.data", "images/s": n / tfds_seconds,
         "ratio vs reference": memory_seconds / tfds_seconds},
        {"what": "reference: in-memory from_tensor_slices", "images/s": n / memory_seconds,
         "ratio vs reference": 1.0},
    ]
    report("data_pipeline", rows, config=config, train_images=n)


if __name__ == "__main__":
    main()
