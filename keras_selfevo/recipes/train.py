"""Training recipes: ``models/<name>/config.json`` → data, zoo model, ``fit``, outputs.

A recipe names a zoo model and a dataset; :func:`train` builds both under a
``tf.distribute`` strategy and runs ``fit`` with TensorBoard, ModelCheckpoint,
BackupAndRestore and a CSV log, then writes ``history.json`` and ``loss_curve.png``. Batch
sizes are global: under a strategy with N replicas each replica gets ``batch_size / N``.

Every input is checked before anything is written: recipe keys and types, the strategy,
the dataset, and whether ``--output`` holds an interrupted run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import distribute, zoo
from keras_selfevo.plotting import save_curves
from keras_selfevo.recipes import data, schema
from keras_selfevo.recipes.schema import Field

FIELDS: dict[str, Field] = {
    **schema.COMMON,
    "model": Field(None, (str,), f"one of {zoo.names()}",
                   schema.one_of(*[n for n in zoo.names() if "train" in zoo.commands(n)])),
    "dataset": Field(None, (str,),
                     "a TFDS name, e.g. 'selfevo_glyphs/classify10' or 'mnist'"),
    "train_split": Field("train", (str,), "a split name"),
    "validation_split": Field("test", schema.OPTIONAL_STR, "a split name or null"),
    "max_train_examples": Field(None, schema.OPTIONAL_INT, "a positive integer or null",
                                schema.positive_int),
    "max_validation_examples": Field(None, schema.OPTIONAL_INT, "a positive integer or null",
                                     schema.positive_int),
    "sequence_length": Field(None, schema.OPTIONAL_INT, "a positive integer or null",
                             schema.positive_int),
    "epochs": Field(5, (int,), "a positive integer", schema.positive_int),
    "batch_size": Field(64, (int,), "a positive integer", schema.positive_int),
    "learning_rate": Field(1e-3, schema.NUMBER, "a positive number", schema.positive_number),
    "alpha": Field(0.5, schema.NUMBER, "a number in [0, 1]", schema.unit_interval),
    "reward_weighting": Field("raw", (str,), "a weighting name"),
    "masked_self_loss": Field(False, (bool,), "true or false"),
    "metrics": Field([], (list,), "a list of metric names"),
    "steps_per_execution": Field(1, (int,), "a positive integer", schema.positive_int),
    "deterministic": Field(False, (bool,), "true or false"),
}


def load_train_recipe(recipe_dir: str, **overrides: Any) -> dict[str, Any]:
    """Read ``recipe_dir/config.json`` over the defaults and ``overrides``; check it.

    Raises:
        FileNotFoundError: no ``config.json`` in ``recipe_dir``.
        ValueError: invalid JSON, an unknown key, or a value of the wrong type or range.
    """
    path, config = schema.load(recipe_dir, FIELDS, overrides)
    if config["model"] is None:
        raise ValueError(f"{path}: `model` is required.")
    if config["dataset"] is None:
        raise ValueError(f"{path}: `dataset` is required.")
    return config


def build_model(config: dict[str, Any], info: dict[str, Any]) -> keras.Model:
    """The recipe's zoo model, compiled (call inside the strategy's scope).

    ``info`` is what the data fixes (input shape and classes, or the vocabulary); it fills
    the builder arguments the recipe leaves open.
    """
    model = zoo.build(config["model"], **schema.model_arguments(config, info))
    model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                  alpha=float(config["alpha"]), reward_weighting=config["reward_weighting"],
                  masked_self_loss=config["masked_self_loss"], metrics=config["metrics"] or None,
                  steps_per_execution=config["steps_per_execution"])
    return model


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch, validation included) to the logs."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of all weights' bytes: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _read_history(path: str) -> dict[str, list[float]]:
    """The CSV log as columns; a repeated epoch (a run killed mid-save) keeps its last row."""
    rows: dict[int, dict[str, str]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            rows[int(row["epoch"])] = row
    keys = [k for k in next(iter(rows.values()), {}) if k != "epoch"]
    # CSVLogger writes "NA" for a value missing in an epoch.
    value = lambda text: float("nan") if text in ("NA", "", None) else float(text)  # noqa: E731
    columns = {key: [value(rows[e].get(key)) for e in sorted(rows)] for key in keys}
    return {key: values for key, values in columns.items() if not np.isnan(values).all()}


def train(recipe_dir: str, output: str | None = None, *, epochs: int | None = None,
          batch_size: int | None = None, strategy: str = "auto", data_dir: str | None = None,
          resume: bool = False, overrides: dict[str, Any] | None = None,
          verbose: int | str = "auto") -> dict[str, Any]:
    """Train a recipe; returns ``{"history", "output", "weights_sha256", "initial_epoch"}``.

    Args:
        recipe_dir: A folder with ``config.json`` (e.g. ``models/mnist_cnn``).
        output: Where checkpoints, logs and curves go (default ``runs/<recipe>``).
        epochs: Override the recipe's epochs.
        batch_size: Override the recipe's global batch size.
        strategy: ``auto``, ``default``, ``one_device``, ``mirrored`` or ``multiworker``.
        data_dir: Where datasets are prepared (overrides the recipe's ``data_dir``).
        resume: Continue the interrupted run in ``output`` from its last finished epoch.
        overrides: Other recipe keys to override.
        verbose: ``fit``'s verbosity.

    Raises:
        ValueError, FileNotFoundError: bad recipe, flags or dataset; nothing is written.
    """
    config = load_train_recipe(recipe_dir, **schema.merge_overrides(
        overrides, epochs=epochs, batch_size=batch_size, data_dir=data_dir))
    schema.model_arguments(config)  # unknown model_args fail before any data is read
    if strategy not in distribute.STRATEGIES:
        raise ValueError(f"Unknown `--strategy` {strategy!r}; expected one of "
                         f"{distribute.STRATEGIES}.")
    output = schema.output_folder(recipe_dir, output)
    backup = os.path.join(output, "backup")
    schema.check_resume(output, "backup", resume, "interrupted run")
    if config["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    chosen = distribute.get_strategy(strategy)  # before any other TensorFlow work
    keras.utils.set_random_seed(config["seed"])
    train_arrays, validation_arrays, info = data.read_data(config)

    chief = distribute.is_chief()
    # Other workers keep their backups apart and write nothing else. Beside the chief's, not
    # inside it: the chief deletes its backup folder when training ends, maybe while another
    # worker is still writing its own.
    scratch = None if chief else tempfile.mkdtemp(prefix="kse-worker-")
    if not chief:
        backup = os.path.join(output, f"backup-worker-{distribute.task_index()}")
    os.makedirs(output, exist_ok=True)
    first_epoch = 0
    metadata = os.path.join(backup, "training_metadata.json")
    if resume and os.path.isfile(metadata):
        with open(metadata) as handle:
            first_epoch = int(json.load(handle)["epoch"])

    with chosen.scope():
        model = build_model(config, info)
    to_model = data.to_model_inputs(config, info)
    batches, steps = data.epoch_dataset(train_arrays, config["batch_size"], config["seed"],
                                        first_epoch, config["epochs"], to_model)
    validation = (data.validation_dataset(validation_arrays, config["batch_size"], to_model)
                  if validation_arrays else None)
    logs = os.path.join(output if chief else scratch, "logs")
    history_csv = os.path.join(output if chief else scratch, "history.csv")
    callbacks = [
        EpochTimer(),
        keras.callbacks.CSVLogger(history_csv, append=resume),
        keras.callbacks.BackupAndRestore(backup),
        keras.callbacks.TensorBoard(logs),
    ]
    if chief:
        callbacks.append(keras.callbacks.ModelCheckpoint(os.path.join(output, "checkpoint.keras")))
    try:
        model.fit(batches, epochs=config["epochs"], steps_per_epoch=steps,
                  validation_data=validation, callbacks=callbacks, verbose=verbose)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    digest = weights_digest(model)
    result = {"output": output, "weights_sha256": digest, "initial_epoch": first_epoch,
              "history": None}
    if chief:
        history = _read_history(history_csv)
        result["history"] = history
        with open(os.path.join(output, "history.json"), "w") as handle:
            json.dump({"config": config, "history": history, "weights_sha256": digest}, handle,
                      indent=2)
        keys = [k for k in ("loss", "self_loss", "reinforce_loss", "val_loss", "val_self_loss",
                            "val_reinforce_loss") if k in history]
        save_curves(history, keys, os.path.join(output, "loss_curve.png"),
                    f"{config['name'] or config['model']}: training curves")
    return result
