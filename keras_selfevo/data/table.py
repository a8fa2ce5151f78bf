"""A table of examples (CSV, TSV; Parquet when pandas and pyarrow are installed).

One row an example, a label column (classification or regression, chosen from its values)
and feature columns: numeric ones (every value a number, empty cells filled with the training
mean) and categorical ones (any other). The statistics come from the training split; the
``tabular`` zoo model keeps them, so ``predict`` and an export take raw rows.
"""

from __future__ import annotations

import csv
import os
import re
from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo.data.own_data import (
    OwnData,
    check_path,
    classification_rows,
    split_rows,
    stratified_split,
    to_dataset,
)

MAX_CLASSES = 20  # a numeric label with more distinct integer values is a regression target
MAX_CATEGORIES = 50  # rarer categories of a column share one "other" entry


def _rows(path: str) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV, TSV or Parquet file, as strings."""
    if path.lower().endswith(".parquet"):
        try:
            import pandas
        except ImportError:
            raise ValueError(f"`data`: reading {path!r} needs pandas and pyarrow; or give a "
                             "CSV or TSV file.") from None
        frame = pandas.read_parquet(path)
        return ([str(c) for c in frame.columns],
                [["" if v is None or v != v else str(v) for v in row]
                 for row in frame.itertuples(index=False)])
    with open(path, newline="", encoding="utf-8") as handle:
        try:
            text = handle.read()
        except UnicodeDecodeError:
            raise ValueError(f"`data`: {path!r} is not a UTF-8 text table.") from None
    delimiter = "\t" if path.lower().endswith(".tsv") or (
        "\t" in text.split("\n", 1)[0] and "," not in text.split("\n", 1)[0]) else ","
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if row]
    if len(rows) < 2:
        raise ValueError(f"`data`: {path!r} holds no rows under its header.")
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"`data`: row {number} of {path!r} has {len(row)} cells; the "
                             f"header has {len(header)}.")
    return [name.strip() for name in header], body


def _as_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _column_kinds(header: list[str], rows: list[list[str]],
                  path: str) -> tuple[list[str], list[str]]:
    """Numeric and categorical columns; a numeric column with a stray word is an error."""
    numeric, categorical = [], []
    for index, name in enumerate(header):
        values = [row[index].strip() for row in rows]
        filled = [(number, v) for number, v in enumerate(values, start=2) if v != ""]
        parsed = [(number, v, _as_number(v)) for number, v in filled]
        bad = [(number, v) for number, v, x in parsed if x is None]
        if not bad:
            numeric.append(name)
        elif len(bad) <= 0.05 * len(filled):
            number, value = bad[0]
            raise ValueError(f"`data`: column {name!r} of {path!r} holds numbers, but row "
                             f"{number} has {value!r}: fix or empty that cell.")
        else:
            categorical.append(name)
    return numeric, categorical


def input_name(column: str) -> str:
    """A column's name as a model input's name (letters, digits and underscores)."""
    return re.sub(r"\W", "_", column).strip("_") or "column"


def read_table(path: str, *, label: str | None = None, validation_fraction: float = 0.1,
               seed: int = 0) -> OwnData:
    """Read a table; hold back a split (stratified for classification).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no rows, a missing label column (the columns are listed), a label with
            one value, a non-numeric value in a numeric column (row and column named).
    """
    path = check_path(path)
    header, rows = _rows(path)
    if label is None:
        label = "label" if "label" in header else header[-1]
    if label not in header:
        raise ValueError(f"`label`: {path!r} has no column {label!r}; its columns are "
                         f"{header}.")
    if len(header) < 2:
        raise ValueError(f"`data`: {path!r} has no feature columns besides {label!r}.")
    numeric, categorical = _column_kinds(header, rows, path)
    target = np.array([row[header.index(label)].strip() for row in rows], dtype=object)
    present = target != ""
    numbers = [_as_number(v) for v in target[present]]
    is_numeric = label in numeric
    distinct = sorted(set(target[present]), key=lambda v: (_as_number(v) is None,
                                                           _as_number(v) or 0, v))
    if len(distinct) < 2:
        raise ValueError(f"`label`: the column {label!r} of {path!r} has one value only "
                         f"({distinct[0] if distinct else 'none'!r}): nothing to learn.")
    regression = is_numeric and (len(distinct) > MAX_CLASSES
                                 or any(x != round(x) for x in numbers))
    features_numeric = [c for c in numeric if c != label]
    features_categorical = [c for c in categorical if c != label]
    if regression:
        y = np.full(len(rows), np.nan, np.float64)
        y[present] = numbers
        held = np.random.default_rng([seed, 2]).random(len(rows)) < validation_fraction
    else:
        y = np.full(len(rows), -1, np.int64)
        y[present] = [distinct.index(v) for v in target[present]]
        held = np.zeros(len(rows), bool)
        held[present] = stratified_split(y[present], validation_fraction, seed)
    columns = {name: np.array([row[header.index(name)].strip() for row in rows], dtype=object)
               for name in features_numeric + features_categorical}
    info: dict[str, Any] = {"label": label, "task": "regression" if regression else
                            "classification", "numeric": features_numeric,
                            "categorical": {}, "means": [], "variances": [], "notes": []}
    x: dict[str, np.ndarray] = {}
    for name in features_numeric:
        values = np.array([_as_number(v) if v != "" else np.nan for v in columns[name]],
                          np.float64)
        mean = float(np.nanmean(values[~held]))
        if np.isnan(values).any():
            info["notes"].append(f"filled {int(np.isnan(values).sum())} empty cells of "
                                 f"{name!r} with its training mean")
        values = np.where(np.isnan(values), mean, values)
        info["means"].append(mean)
        info["variances"].append(float(np.var(values[~held])))
        x[input_name(name)] = values[:, None].astype(np.float32)
    for name in features_categorical:
        counts: dict[str, int] = {}
        for value in columns[name][~held]:
            counts[value] = counts.get(value, 0) + 1
        info["categorical"][name] = sorted(counts, key=lambda v: -counts[v])[:MAX_CATEGORIES]
        x[input_name(name)] = columns[name][:, None].astype(str).astype(object)
    if regression:
        info["label_mean"] = float(np.nanmean(y[~held]))
        info["label_std"] = float(np.nanstd(y[~held])) or 1.0
    else:
        info["num_classes"] = len(distinct)
        info["class_names"] = [str(v) for v in distinct]
    notes = info.pop("notes")
    train, validation = split_rows({"x": x, "label": y}, held, seed)
    return OwnData("table", train, validation, info, notes)


def table_targets(labels: np.ndarray, info: dict[str, Any]) -> dict[str, np.ndarray]:
    """Targets of a table's labels: one-hot classes, or the value (regression); reward 1.

    A row without a label has reward 0 and an all-zero target (self-loss only).
    """
    if info["task"] == "classification":
        return classification_rows(labels, info["num_classes"])
    present = ~np.isnan(labels)
    return {"policy": np.where(present, labels, 0.0)[:, None].astype(np.float32),
            "reward": present.astype(np.float32)}


def from_table(path: str, *, label: str | None = None, validation_fraction: float = 0.1,
               seed: int = 0) -> tuple[dict[str, tf.data.Dataset], dict[str, Any]]:
    """Your table as datasets for the ``tabular`` zoo model.

    Elements are ``({column: value}, {"policy": ..., "reward": ...})``: raw values by input
    name (numbers as float32, categories as strings), a one-hot class or the regression value.

    Example:
    >>> datasets, info = kse.data.from_table("wine.csv", label="target")
    >>> model = kse.zoo.build("tabular", **kse.zoo.tabular_arguments(info))
    >>> model.compile(optimizer="adam", alpha=0.2, reinforce_loss="log_likelihood")
    >>> model.fit(datasets["train"].batch(32), epochs=50)

    Returns:
        ``({"train": ..., "validation": ...}, info)``: ``info`` holds the task, the label,
        the numeric columns with their training means and variances, the categorical
        columns with their categories, the classes (or the label's mean and spread), notes.
    """
    data = read_table(path, label=label, validation_fraction=validation_fraction, seed=seed)
    datasets = {split: to_dataset(arrays["x"], table_targets(arrays["label"], data.info))
                for split, arrays in (("train", data.train), ("validation", data.validation))}
    return datasets, {**data.info, "notes": data.notes}


def is_table(path: str) -> bool:
    """Whether ``path`` names a table file (by its ending)."""
    return os.path.isfile(path) and path.lower().endswith((".csv", ".tsv", ".parquet"))
