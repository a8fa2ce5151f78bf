import gzip
import struct

import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo import cli


def _write_idx(path, array, magic=None, count=None):
    array = np.asarray(array, np.uint8)
    magic = magic or (2051 if array.ndim == 3 else 2049)
    shape = list(array.shape)
    if count is not None:
        shape[0] = count
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *shape) + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(data)


def _idx_dir(tmp_path, **broken):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(12) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([3, 1, 4, 1, 5]),
    }
    arrays = {name: np.asarray(array, np.uint8) for name, array in arrays.items()}
    folder = tmp_path / "idx"
    folder.mkdir()
    for name, array in arrays.items():
        _write_idx(folder / name, array, **broken.get(name, {}))
    return folder, arrays


def test_idx_files_become_the_tfds_mnist_dataset(tmp_path):
    folder, arrays = _idx_dir(tmp_path)
    data_dir = tmp_path / "tfds"
    path = kse.data.prepare_mnist(folder, data_dir)
    assert path.endswith("mnist/3.0.1")
    for split, images, labels in (("train", "train-images-idx3-ubyte.gz",
                                   "train-labels-idx1-ubyte.gz"),
                                  ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
        loaded = kse.data.load("mnist", split=split, data_dir=str(data_dir), batch_size=-1)
        got_images, got_labels = loaded["image"].numpy(), loaded["label"].numpy()
        assert got_images.shape == (len(arrays[labels]), 28, 28, 1)
        # TFDS shuffles the records: match each example to its source by its pixels.
        source = {arrays[images][i].tobytes(): arrays[labels][i]
                  for i in range(len(arrays[labels]))}
        assert sorted(source) == sorted(image[:, :, 0].tobytes() for image in got_images)
        for image, label in zip(got_images, got_labels):
            assert source[image[:, :, 0].tobytes()] == label
    # Prepared once: a second call reuses it.
    assert kse.data.prepare_mnist(folder, data_dir) == path


def test_cli_prepares_mnist(tmp_path, capsys):
    folder, _ = _idx_dir(tmp_path)
    assert cli.main(["prepare-mnist", str(folder), "--data-dir", str(tmp_path / "d")]) == 0
    assert "--set dataset=mnist --data-dir" in capsys.readouterr().out
    assert (tmp_path / "d" / "mnist" / "3.0.1" / "dataset_info.json").exists()


@pytest.mark.parametrize("broken, message", [
    ({"train-images-idx3-ubyte.gz": {"magic": 2049}},
     "has magic number 2049; expected 2051 for an images file"),
    ({"t10k-labels-idx1-ubyte": {"magic": 2051}},
     "has magic number 2051; expected 2049 for a labels file"),
    ({"t10k-labels-idx1-ubyte": {"count": 6}}, r"declares \(6,\) but holds 5 data bytes"),
])
def test_bad_idx_files_are_clear_errors_before_any_write(tmp_path, broken, message):
    folder, _ = _idx_dir(tmp_path, **broken)
    with pytest.raises(ValueError, match=message):
        kse.data.prepare_mnist(folder, tmp_path / "tfds")
    assert not (tmp_path / "tfds").exists()


def test_mismatched_counts_and_missing_files_are_clear_errors(tmp_path):
    folder, _ = _idx_dir(tmp_path)
    _write_idx(folder / "t10k-labels-idx1-ubyte", np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 3 labels"):
        kse.data.prepare_mnist(folder, tmp_path / "tfds")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="has no t10k-labels-idx1-ubyte"):
        kse.data.prepare_mnist(folder, tmp_path / "tfds")
    with pytest.raises(FileNotFoundError, match="`idx_dir` must be a folder"):
        kse.data.prepare_mnist(tmp_path / "nowhere", tmp_path / "tfds")
    assert cli.main(["prepare-mnist", str(tmp_path / "nowhere")]) == 2
