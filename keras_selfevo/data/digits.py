"""TFDS builder ``selfevo_digits``: scikit-learn's real handwritten digits, 28×28, offline.

``sklearn.datasets.load_digits`` ships 1,797 handwritten digits (8×8, 16 gray levels, from
43 writers) inside scikit-learn, so they need no download. The builder scales each to a
20×20 box centred in 28×28 (bilinear), as MNIST centres its digits, so the zoo's 28×28
CNNs take them unchanged. Fixed splits: of each class's images in scikit-learn's order,
every fifth (positions 4, 9, ...) is ``test`` (355 images), the rest ``train`` (1,442).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from keras_selfevo.data.local_builder import LocalBuilder

IMAGE_SIZE, BOX = 28, 20
TEST_EVERY = 5


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 ``[n, 28, 28, 1]`` (ink bright on dark) and their labels."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = digits.images.astype(np.float32)[..., None] * (255.0 / 16.0)
    box = tf.image.resize(small, (BOX, BOX), method="bilinear").numpy()
    pad = (IMAGE_SIZE - BOX) // 2
    images = np.zeros((len(small), IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
    images[:, pad:pad + BOX, pad:pad + BOX] = box
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), digits.target.astype(np.int64)


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    """The fixed split: every fifth image of each class is ``test``."""
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test[members[TEST_EVERY - 1::TEST_EVERY]] = True
    return {"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}


class SelfevoDigits(LocalBuilder):
    """scikit-learn's handwritten digits at 28×28; registered with TFDS as ``selfevo_digits``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: load_digits in a 20x20 box of 28x28."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
                "label": tfds.features.ClassLabel(num_classes=10),
                "index": np.int32,
            }),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # scikit-learn ships the images; nothing is downloaded.
        images, labels = digit_images()
        return {split: self._generate_examples(images, labels, indices)
                for split, indices in split_indices(labels).items()}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray, indices: np.ndarray):
        for index in indices:
            yield int(index), {"image": images[index], "label": int(labels[index]),
                               "index": int(index)}
