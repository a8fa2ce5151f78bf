import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo.data import language_data, pipeline, text
from keras_selfevo.recipes import data as recipe_data


def _labeled():
    images = np.arange(40 * 4 * 4, dtype=np.uint8).reshape(40, 4, 4, 1)
    return tf.data.Dataset.from_tensor_slices((images, np.repeat(np.arange(10), 4)))


ARRAYS = {"x": np.arange(24, dtype=np.float32).reshape(12, 2), "y": np.arange(12)}
BUILDERS = {
    "episodes": lambda: kse.data.episodes(_labeled(), ways=2, shots=1, queries=1,
                                          meta_batch_size=2),
    "sinusoid_tasks": lambda: kse.data.sinusoid_tasks(2, 2, 2),
    "window_batches": lambda: language_data.window_batches(np.arange(50) % 7, 8, 2, 0, 0, 3),
    "text_tasks": lambda: kse.data.text_tasks([np.arange(400) % 7] * 2, shots=2, queries=2,
                                              window=8, meta_batch_size=2),
    "language_model_dataset": lambda: text.language_model_dataset(["ab", "ba"], "ab"),
    "epoch_dataset": lambda: recipe_data.epoch_dataset(ARRAYS, 4, 0, 0, 2, lambda b: b)[0],
    "validation_dataset": lambda: recipe_data.validation_dataset(ARRAYS, 4, lambda b: b),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_package_pipelines_run_without_autotuning(name):
    """tf.data's autotuning thread is waited for at each iterator's end (every fit): the
    package's in-memory pipelines switch it off, and still yield their elements."""
    dataset = BUILDERS[name]()
    assert dataset.options().autotune.enabled is False
    # The option survives the maps and prefetches Keras and the package add downstream.
    downstream = dataset.map(lambda *element: element).prefetch(tf.data.AUTOTUNE)
    assert downstream.options().autotune.enabled is False
    assert next(iter(dataset)) is not None


def test_untuned_keeps_the_elements():
    dataset = tf.data.Dataset.range(10).map(lambda i: i * i, num_parallel_calls=tf.data.AUTOTUNE,
                                            deterministic=True)
    assert tf.data.Dataset.range(10).options().autotune.enabled is None
    np.testing.assert_array_equal(list(pipeline.untuned(dataset).as_numpy_iterator()),
                                  list(dataset.as_numpy_iterator()))


def test_numpy_elements_reads_every_element_with_an_untuned_iterator(monkeypatch):
    # Without the suite's own untuned iteration (tests/conftest.py): the package's alone.
    monkeypatch.setattr(tf.data.Dataset, "_apply_debug_options", lambda self: self)
    dataset = tf.data.Dataset.range(10).map(lambda i: i * i, num_parallel_calls=tf.data.AUTOTUNE,
                                            deterministic=True).prefetch(tf.data.AUTOTUNE)
    elements = pipeline.numpy_elements(dataset)
    assert elements._iterator._dataset.options().autotune.enabled is False
    assert [int(x) for x in elements] == [i * i for i in range(10)]
    # Plain iteration keeps tf.data's default (autotuning on).
    assert iter(dataset)._dataset.options().autotune.enabled is not False
