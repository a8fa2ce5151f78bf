"""``kse.data.load``: one entry point for our generated datasets and prepared TFDS ones."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

# Builders of this package: they generate their data locally when first loaded.
LOCAL_BUILDERS = ("selfevo_glyphs", "selfevo_digits", "selfevo_text", "selfevo_shakespeare",
                  "selfevo_speakers")


class DatasetNotPreparedError(FileNotFoundError):
    """A standard TFDS dataset was asked for but is not prepared in the local data_dir."""


def _base_name(name: str) -> str:
    return name.split("/")[0].split(":")[0]


def default_data_dir() -> str:
    """``$TFDS_DATA_DIR``, or ``~/tensorflow_datasets`` as TFDS defaults to."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def _preparation_hint(name: str, data_dir: str) -> str:
    base = _base_name(name)
    return (
        f"Dataset '{name}' is not prepared in data_dir '{data_dir}', and nothing is "
        "downloaded at run time. Prepare it on a machine with internet access:\n"
        f"    python -c \"import tensorflow_datasets as tfds; "
        f"tfds.builder('{name}', data_dir='PREPARED').download_and_prepare()\"\n"
        f"then copy the folder PREPARED/{base} to {os.path.join(data_dir, base)} "
        "(or pass data_dir=PREPARED)."
    )


def is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
    """Whether ``builder``'s dataset is prepared in its data_dir."""
    # TFDS's is_prepared logs "Variant folder ... has no dataset_info.json" for every dataset
    # not prepared yet; an absent info file answers the question without that warning.
    info = os.path.join(os.fspath(builder.data_path), "dataset_info.json")
    return tf.io.gfile.exists(info) and builder.is_prepared()


def load(
    name: str,
    split: str | Any = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    as_supervised: bool = False,
    shuffle_files: bool = False,
    batch_size: int | None = None,
    **as_dataset_kwargs: Any,
) -> tf.data.Dataset:
    """Load a dataset without touching the network.

    Our own builders (``selfevo_glyphs``, ``selfevo_text``, with an optional ``/config``) are
    generated into ``data_dir`` the first time and read from there afterwards. Any other
    TFDS name (for example ``"mnist"`` or ``"omniglot"``) must already be prepared in
    ``data_dir``.

    Args:
        name: A TFDS name, optionally with ``/config`` and ``:version``.
        split: A TFDS split such as ``"train"`` or ``"test[:10%]"``.
        data_dir: Where prepared datasets live; defaults to ``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``.
        as_supervised: Return ``(input, label)`` pairs instead of feature dicts.
        shuffle_files: Shuffle the order of the record files.
        batch_size: Batch the dataset (``None`` leaves it unbatched).
        **as_dataset_kwargs: Passed on to ``tfds.core.DatasetBuilder.as_dataset``.

    Returns:
        A ``tf.data.Dataset``.

    Raises:
        ValueError: ``name`` is not a known dataset.
        DatasetNotPreparedError: a standard dataset is not prepared in ``data_dir``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty dataset name, got {name!r}.")
    data_dir = os.fspath(data_dir) if data_dir is not None else default_data_dir()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
        # TFDS appends its whole catalogue; keep its first line and any suggestion.
        lines = [line.strip() for line in str(error).splitlines()]
        summary = " ".join([lines[0]] + [line for line in lines
                                         if line.lower().startswith("did you mean")])
        raise ValueError(
            f"Unknown dataset `name`={name!r}: expected one of this package's builders "
            f"{LOCAL_BUILDERS} or a TFDS dataset name ({summary})"
        ) from None
    if _base_name(name) in LOCAL_BUILDERS:
        if not is_prepared(builder):
            builder.download_and_prepare()
    elif not is_prepared(builder):
        raise DatasetNotPreparedError(_preparation_hint(name, data_dir))
    return builder.as_dataset(
        split=split,
        as_supervised=as_supervised,
        shuffle_files=shuffle_files,
        batch_size=batch_size,
        **as_dataset_kwargs,
    )
