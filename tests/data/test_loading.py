import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_selfevo as kse
from keras_selfevo.data.local_builder import LocalInfo
from tests.data.test_mnist_files import _idx_dir


class _OfflineMnist(LocalInfo, tfds.image_classification.MNIST, skip_registration=True):
    """Writes a tiny MNIST-shaped dataset under the real builder's name, with no download."""

    name = "mnist"

    def _split_generators(self, dl_manager):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(12, 28, 28, 1), dtype=np.uint8)
        return {
            "train": self._examples(images[:8]),
            "test": self._examples(images[8:]),
        }

    def _examples(self, images):
        for index, image in enumerate(images):
            yield index, {"image": image, "label": index % 10}


def test_load_generates_our_builder_into_data_dir(tmp_path):
    ds = kse.data.load("selfevo_glyphs/small", split="validation", data_dir=tmp_path,
                       as_supervised=True, batch_size=50)
    images, labels = next(iter(ds))
    assert images.shape == (50, 28, 28, 1) and labels.shape == (50,)
    assert (tmp_path / "selfevo_glyphs" / "small").is_dir()


def test_load_reads_a_standard_dataset_prepared_in_data_dir(tmp_path):
    _OfflineMnist(data_dir=str(tmp_path)).download_and_prepare()
    ds = kse.data.load("mnist", split="train", data_dir=tmp_path)
    labels = [int(example["label"]) for example in ds]
    assert sorted(labels) == sorted(i % 10 for i in range(8))


def test_missing_standard_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(kse.data.DatasetNotPreparedError) as info:
        kse.data.load("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "download_and_prepare" in message
    assert not any(tmp_path.iterdir())  # nothing was written or downloaded


def test_unknown_dataset_name_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset `name`='no_such_dataset'"):
        kse.data.load("no_such_dataset", data_dir=tmp_path)
    with pytest.raises(ValueError, match="`name`"):
        kse.data.load("", data_dir=tmp_path)


def test_an_unknown_name_is_one_short_line(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset `name`='nosuch'") as caught:
        kse.data.load("nosuch", data_dir=tmp_path)
    assert len(str(caught.value)) < 400 and "\n" not in str(caught.value)


def test_generating_leaves_nothing_in_the_temporary_directory(tmp_path, monkeypatch):
    # TFDS makes an empty folder there for its bucket's dataset information whenever a
    # builder is made for a data_dir without the dataset, and never removes it.
    import tempfile

    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    kse.data.load("selfevo_glyphs/small", split="validation", data_dir=tmp_path / "data")
    tfds.builder("selfevo_digits", data_dir=tmp_path / "other")  # made, not prepared
    kse.data.prepare_mnist(_idx_dir(tmp_path)[0], tmp_path / "mnist")  # TFDS's own builder
    assert list(temporary.iterdir()) == []
