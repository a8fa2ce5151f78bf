"""Prepare TFDS ``mnist`` from local IDX files, for machines without a network.

TFDS's ``mnist`` builder downloads its four IDX files. With the files at hand (copied from
any MNIST mirror, gzipped or not), :func:`prepare_mnist` writes the same prepared dataset
(``mnist`` 3.0.1: the same features, splits and record files) into a ``data_dir``, so that
``kse.data.load("mnist", data_dir=...)``, ``tfds.load`` and the recipes'
``--set dataset=mnist --data-dir D`` read it offline.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import mnist as tfds_mnist

from keras_selfevo.data.loading import is_prepared
from keras_selfevo.data.local_builder import LocalInfo

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
# split -> (images file, labels file), as the MNIST site names them.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(directory: str, name: str) -> str:
    """``name``, ``name.gz`` or the ``train-images.idx3-ubyte`` spelling, in ``directory``."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"`idx_dir` {directory!r} has no {name} (nor {name}.gz, {dotted}).")


def _read(path: str, magic: int) -> np.ndarray:
    """An IDX file's uint8 array, after checking its magic number and its size."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as handle:
        data = handle.read()
    dims = 3 if magic == IMAGES_MAGIC else 1
    header = 4 + 4 * dims
    if len(data) < header:
        raise ValueError(f"IDX file {path!r} is truncated: {len(data)} header bytes.")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        kind = "an images" if magic == IMAGES_MAGIC else "a labels"
        raise ValueError(f"IDX file {path!r} has magic number {found}; expected {magic} "
                         f"for {kind} file.")
    shape = struct.unpack(f">{dims}I", data[4:header])
    if len(data) - header != int(np.prod(shape)):
        raise ValueError(f"IDX file {path!r} declares {shape} but holds "
                         f"{len(data) - header} data bytes.")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def check_idx_dir(idx_dir: str) -> dict[str, tuple[str, str, int]]:
    """Each split's images and labels files and its example count, after checking them.

    Raises:
        FileNotFoundError: ``idx_dir`` or one of the four files is missing.
        ValueError: a wrong magic number, a truncated file, images that are not 28×28, or
            image and label counts that differ.
    """
    if not isinstance(idx_dir, (str, os.PathLike)) or not os.path.isdir(idx_dir):
        raise FileNotFoundError(f"`idx_dir` must be a folder holding the MNIST IDX files, got "
                                f"{idx_dir!r}.")
    idx_dir = os.fspath(idx_dir)
    found = {}
    for split, (images_name, labels_name) in FILES.items():
        images, labels = _find(idx_dir, images_name), _find(idx_dir, labels_name)
        count, height, width = _read(images, IMAGES_MAGIC).shape
        (label_count,) = _read(labels, LABELS_MAGIC).shape
        if (height, width) != (28, 28):
            raise ValueError(f"{images!r} holds {height}x{width} images; MNIST's are 28x28.")
        if count != label_count:
            raise ValueError(f"{images!r} holds {count} images but {labels!r} holds "
                             f"{label_count} labels; they must be equal.")
        found[split] = (images, labels, count)
    return found


class _LocalMNIST(LocalInfo, tfds_mnist.MNIST, skip_registration=True):
    """TFDS's ``mnist`` builder, reading the IDX files from a local folder."""

    name = "mnist"

    def __init__(self, *, files: dict[str, tuple[str, str, int]], **kwargs):
        self._files = files
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        return [tfds.core.SplitGenerator(name=split, gen_kwargs={"split": split})
                for split in self._files]

    def _generate_examples(self, split):
        images_path, labels_path, _ = self._files[split]
        images, labels = _read(images_path, IMAGES_MAGIC), _read(labels_path, LABELS_MAGIC)
        if int(labels.max(initial=0)) >= tfds_mnist.MNIST_NUM_CLASSES:
            raise ValueError(f"{labels_path!r} has label {int(labels.max())}; MNIST's are "
                             "0-9.")
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image[:, :, None], "label": int(label)}

    def _log_download_bytes(self) -> None:
        print(f"Preparing mnist {self.version} from local IDX files into {self.data_dir} "
              "(nothing is downloaded) ...", flush=True)

    def _log_download_done(self) -> None:
        pass


def prepare_mnist(idx_dir: str | os.PathLike, data_dir: str | os.PathLike) -> str:
    """Write TFDS ``mnist`` into ``data_dir`` from the four IDX files in ``idx_dir``.

    The files are checked (names, magic numbers, sizes, matching counts) before anything is
    written; TFDS writes into a temporary folder and renames it when done, so an interrupted
    run leaves no half-prepared dataset.

    Args:
        idx_dir: Folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally
            ``.gz``).
        data_dir: The TFDS data_dir to prepare ``mnist`` in.

    Returns:
        The prepared dataset's folder (``data_dir/mnist/3.0.1``).

    Raises:
        FileNotFoundError, ValueError: see :func:`check_idx_dir`.
    """
    files = check_idx_dir(idx_dir)
    builder = _LocalMNIST(files=files, data_dir=os.fspath(data_dir))
    if not is_prepared(builder):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder.data_dir
