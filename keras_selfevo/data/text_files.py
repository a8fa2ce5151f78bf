"""The user's text: UTF-8 files for a language model, or labelled texts in a table.

A vocabulary is built from the training text: its characters by frequency, at most
``max_vocabulary`` ids with the three special tokens; rarer characters become one unknown
character (``UNKNOWN``, which the vocabulary then holds).
"""

from __future__ import annotations

import collections
import os
from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo.data import text
from keras_selfevo.data.own_data import (
    OwnData,
    check_path,
    classification_rows,
    split_rows,
    stratified_split,
    to_dataset,
)
from keras_selfevo.data.table import _rows

EXTENSIONS = (".txt", ".md")
UNKNOWN = "\ufffd"  # stands for every character outside the vocabulary


def read_text_file(path: str) -> str:
    """A UTF-8 text file's contents; a clear error for a missing, empty or binary file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No text file at {path!r}.")
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw.strip():
        raise ValueError(f"The text file {path!r} is empty.")
    if b"\x00" in raw:
        raise ValueError(f"{path!r} is a binary file (it holds NUL bytes); give a UTF-8 text "
                         "file.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path!r} is not UTF-8 text (byte {error.start}: "
                         f"{raw[error.start:error.start + 1]!r}); give a UTF-8 text file.") \
            from None


def text_file_paths(path: str) -> list[str]:
    """One file, or the ``.txt`` / ``.md`` files of a folder (and its subfolders), sorted."""
    path = check_path(path)
    if os.path.isfile(path):
        return [path]
    files = sorted(os.path.join(folder, name) for folder, _, names in os.walk(path)
                   for name in names if name.lower().endswith(EXTENSIONS))
    if not files:
        raise ValueError(f"`data`: the folder {path!r} holds no .txt or .md file.")
    return files


def build_vocabulary(texts: list[str], max_vocabulary: int,
                     other_texts: list[str] = ()) -> tuple[str, str]:
    """The characters to keep (sorted) and the rarer ones left out, from ``texts``.

    ``other_texts`` (held-out text) count for nothing, but a character only they hold needs
    the unknown character too.
    """
    counts = collections.Counter("".join(texts))
    room = max_vocabulary - len(text.SPECIAL_TOKENS)
    unseen = set("".join(other_texts)) - set(counts)
    if len(counts) > room or unseen:
        room -= 1  # the unknown character takes an id
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    kept, dropped = ranked[:room], ranked[room:]
    vocabulary = "".join(sorted(kept + ([UNKNOWN] if dropped or unseen else [])))
    return vocabulary, "".join(sorted(dropped))


def encode_with_unknown(stream: str, vocabulary: str) -> np.ndarray:
    """Token ids of ``stream``; characters outside ``vocabulary`` become ``UNKNOWN``'s id."""
    if UNKNOWN in vocabulary:
        missing = set(stream) - set(vocabulary)
        stream = stream.translate({ord(c): UNKNOWN for c in missing})
    return text.encode_stream(stream, vocabulary)


def read_text(path: str, *, max_vocabulary: int = 200, validation_fraction: float = 0.1,
              vocabulary: str | None = None) -> OwnData:
    """Text files as token streams: the last ``validation_fraction`` of each file held out.

    Args:
        path: A UTF-8 text file, or a folder of ``.txt`` / ``.md`` files.
        max_vocabulary: The most ids of the vocabulary built from the training text.
        validation_fraction: The share at the end of every file held out.
        vocabulary: Use these characters instead of building a vocabulary (e.g. a
            pretrained model's); others become ``UNKNOWN`` if it holds it, else an error.

    Raises:
        FileNotFoundError, ValueError: no such path, a file that is not UTF-8 text, or
            characters outside a given vocabulary without ``UNKNOWN``.
    """
    texts = [read_text_file(file) for file in text_file_paths(path)]
    cuts = [int(len(t) * (1 - validation_fraction)) for t in texts]
    train = "".join(t[:cut] for t, cut in zip(texts, cuts))
    held = "".join(t[cut:] for t, cut in zip(texts, cuts))
    notes = []
    if vocabulary is None:
        vocabulary, dropped = build_vocabulary([train], max_vocabulary, [held])
        if dropped:
            notes.append(f"{len(dropped)} rare characters ({dropped[:20]!r}) share one "
                         "unknown character")
    else:
        missing = "".join(sorted(set(train + held) - set(vocabulary)))
        if missing and UNKNOWN not in vocabulary:
            raise ValueError(f"`data`: the text holds characters outside the model's "
                             f"vocabulary: {missing!r}.")
    return OwnData("text", {"ids": encode_with_unknown(train, vocabulary)},
                   {"ids": encode_with_unknown(held, vocabulary)},
                   {"vocabulary": vocabulary, "files": len(texts)}, notes)


def _windows(ids: np.ndarray, window: int) -> tf.data.Dataset:
    count = (len(ids) - 1) // window
    x = ids[: count * window].reshape(count, window)
    return to_dataset(x, {"self": ids[1: count * window + 1].reshape(count, window)})


def from_text(path: str, *, window: int = 64, max_vocabulary: int = 200,
              validation_fraction: float = 0.1
              ) -> tuple[dict[str, tf.data.Dataset], dict[str, Any]]:
    """Your text as next-token datasets for a zoo language model (``gpt``, ``char_rnn``).

    Elements are ``(window of ids, {"self": the next ids})``, consecutive windows of
    ``window`` characters (shuffle the training ones).

    Example:
    >>> datasets, info = kse.data.from_text("my_book.txt")
    >>> model = kse.zoo.build("gpt", vocabulary=info["vocabulary"])
    >>> model.compile(optimizer="adam")
    >>> model.fit(datasets["train"].shuffle(1000).batch(32), epochs=5)
    >>> model.nats_per_char(info["validation_ids"])

    Returns:
        ``({"train": ..., "validation": ...}, info)``: ``info`` holds the ``vocabulary``,
        the token streams ``train_ids`` / ``validation_ids`` and ``notes``.

    Raises:
        ValueError: a text too short for one window in each part, or a bad file.
    """
    data = read_text(path, max_vocabulary=max_vocabulary,
                     validation_fraction=validation_fraction)
    for split, arrays in (("training", data.train), ("validation", data.validation)):
        if len(arrays["ids"]) < window + 1:
            raise ValueError(f"`data`: the {split} text holds {len(arrays['ids'])} "
                             f"characters: too short for one window of {window} + 1.")
    datasets = {"train": _windows(data.train["ids"], window),
                "validation": _windows(data.validation["ids"], window)}
    return datasets, {**data.info, "train_ids": data.train["ids"],
                      "validation_ids": data.validation["ids"], "notes": data.notes}


def read_labelled_texts(path: str, *, text_column: str | None = None,
                        label: str | None = None, length: int = 256,
                        max_vocabulary: int = 200, validation_fraction: float = 0.1,
                        vocabulary: str | None = None, seed: int = 0) -> OwnData:
    """A table of texts and labels: token ids ``[n, 1 + length]`` and class indices.

    A row with an empty label is unlabelled (class -1: it trains the self-loss only). Texts
    start with ``<bos>``, are cut at ``length`` characters and padded with ``<pad>``.

    Raises:
        ValueError: a missing column (the columns are listed), a label with one value,
            no labelled row.
    """
    path = check_path(path)
    header, rows = _rows(path)
    text_column = text_column or "text"
    if text_column not in header:
        raise ValueError(f"`text`: {path!r} has no column {text_column!r}; its columns are "
                         f"{header} (--set text=COLUMN).")
    label = label or "label"
    if label not in header:
        raise ValueError(f"`label`: {path!r} has no column {label!r}; its columns are "
                         f"{header} (--set label=COLUMN).")
    texts = [row[header.index(text_column)] for row in rows]
    values = np.array([row[header.index(label)].strip() for row in rows], dtype=object)
    classes = sorted(set(values) - {""})
    if len(classes) < 2:
        raise ValueError(f"`label`: the column {label!r} of {path!r} has "
                         f"{len(classes)} value(s) ({classes}): a classifier needs two.")
    labels = np.array([classes.index(v) if v else -1 for v in values], np.int64)
    held = np.zeros(len(rows), bool)
    labelled = np.flatnonzero(labels >= 0)
    held[labelled] = stratified_split(labels[labelled], validation_fraction, seed)
    notes = []
    if vocabulary is None:
        vocabulary, dropped = build_vocabulary([t for t, h in zip(texts, held) if not h],
                                               max_vocabulary,
                                               [t for t, h in zip(texts, held) if h])
        if dropped:
            notes.append(f"{len(dropped)} rare characters share one unknown character")
    ids = np.full((len(texts), length + 1), text.PAD, np.int32)
    ids[:, 0] = text.BOS
    for row, content in enumerate(texts):
        encoded = encode_with_unknown(content[:length], vocabulary) if content else []
        ids[row, 1:1 + len(encoded)] = encoded
    info = {"vocabulary": vocabulary, "num_classes": len(classes), "class_names": classes,
            "length": length, "unlabeled": int(np.sum(labels < 0))}
    train, validation = split_rows({"x": ids, "label": labels}, held, seed)
    return OwnData("labelled_texts", train, validation, info, notes)


def from_labelled_texts(path: str, *, text_column: str | None = None,
                        label: str | None = None, length: int = 256,
                        max_vocabulary: int = 200, validation_fraction: float = 0.1,
                        seed: int = 0) -> tuple[dict[str, tf.data.Dataset], dict[str, Any]]:
    """Your labelled texts as datasets for the ``text_classifier`` zoo model.

    Elements are ``(ids, {"policy": one-hot class, "reward": 1})``; an unlabelled text has
    an all-zero target and reward 0 (it trains the next-token self-loss only).

    Example:
    >>> datasets, info = kse.data.from_labelled_texts("reviews.csv", text_column="review",
    ...                                                label="sentiment")
    >>> model = kse.zoo.build("text_classifier", vocabulary=info["vocabulary"],
    ...                       num_classes=info["num_classes"])
    >>> model.compile(optimizer="adam", reinforce_loss="log_likelihood")
    >>> model.fit(datasets["train"].shuffle(1000).batch(32), epochs=5)
    """
    data = read_labelled_texts(path, text_column=text_column, label=label, length=length,
                               max_vocabulary=max_vocabulary,
                               validation_fraction=validation_fraction, seed=seed)
    classes = data.info["num_classes"]
    datasets = {split: to_dataset(arrays["x"], classification_rows(arrays["label"], classes))
                for split, arrays in (("train", data.train), ("validation", data.validation))}
    return datasets, {**data.info, "notes": data.notes}
