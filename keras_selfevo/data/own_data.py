"""The user's own data: what every reader returns, and the split it holds back.

The readers (:func:`~keras_selfevo.data.from_directory`, :func:`~keras_selfevo.data.from_table`,
:func:`~keras_selfevo.data.from_text`, :func:`~keras_selfevo.data.from_labelled_texts`) read
files into NumPy arrays, check them (a clear error naming the file, row or column before any
work) and return ``(datasets, info)``: ``tf.data`` datasets ready for a
:class:`~keras_selfevo.SelfEvolvingModel` and what a model needs to know of the data. The
recipes read the same arrays through :func:`read` (one code path).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks


@dataclasses.dataclass
class OwnData:
    """Arrays of the user's data and what a model needs to know of them.

    Attributes:
        kind: ``"images"``, ``"table"``, ``"text"`` or ``"labelled_texts"``.
        train: The training arrays (``x`` and the targets' sources, by name).
        validation: The held-out arrays, or None.
        info: What a model needs: input shape and classes, columns and their statistics,
            the vocabulary...
        notes: What the reader did that the user should know (converted channels, resized
            images, rare characters), one sentence each.
    """

    kind: str
    train: dict[str, Any]
    validation: dict[str, Any] | None
    info: dict[str, Any]
    notes: list[str] = dataclasses.field(default_factory=list)


def check_path(path: str, name: str = "data") -> str:
    """``path`` if it exists, else a ``FileNotFoundError`` naming the argument."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.exists(path):
        raise FileNotFoundError(f"`{name}`: no file or folder at {path!r}.")
    return os.fspath(path)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of held-out examples: ``fraction`` of each class (seeded).

    A class with two or more examples holds back at least one; a class of one holds back
    none.
    """
    _checks.number(fraction, "validation_fraction", 0.0, 1.0, low_open=True, high_open=True)
    rng = np.random.default_rng([seed, 2])
    held = np.zeros(len(labels), bool)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        count = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        if count > 0:
            held[rng.choice(members, count, replace=False)] = True
    return held


def split_rows(arrays: dict[str, Any], held: np.ndarray,
               seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows of ``arrays`` (a nest of arrays) outside and inside ``held``, each shuffled.

    Files come sorted by class: the rows are shuffled (seeded) so that batches mix them.
    """
    rng = np.random.default_rng([seed, 3])
    parts = []
    for rows in (np.flatnonzero(~held), np.flatnonzero(held)):
        order = rows[rng.permutation(len(rows))]
        parts.append(tf.nest.map_structure(lambda a, order=order: a[order], arrays))
    return parts[0], parts[1]


def classification_rows(labels: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Policy targets of labels (one-hot; all zeros with reward 0 where the label is -1)."""
    labels = np.asarray(labels)
    labeled = labels >= 0
    policy = np.zeros((len(labels), num_classes), np.float32)
    policy[labeled] = np.eye(num_classes, dtype=np.float32)[labels[labeled]]
    return {"policy": policy, "reward": labeled.astype(np.float32)}


def to_dataset(x: Any, targets: dict[str, np.ndarray]) -> tf.data.Dataset:
    """``(x, targets)`` rows as an unbatched ``tf.data.Dataset``."""
    return tf.data.Dataset.from_tensor_slices((x, targets))
