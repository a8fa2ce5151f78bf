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

from keras_selfevo import distribute
from keras_selfevo.data import text
from keras_selfevo.data.loading import load
from keras_selfevo.data.text_builder import vocabulary_of
from keras_selfevo.plotting import save_curves
from keras_selfevo.recipe_files import merge_overrides, read_recipe
from keras_selfevo.zoo.registry import build, names

_NUMBER = (int, float)
# key: (default, accepted types, description for errors)
SCHEMA: dict[str, tuple[Any, tuple, str]] = {
    "name": ("", (str,), "a string"),
    "description": ("", (str,), "a string"),
    "model": (None, (str,), f"one of {names()}"),
    "model_args": ({}, (dict,), "an object of the zoo builder's arguments"),
    "dataset": (None, (str,), "a TFDS name, e.g. 'selfevo_glyphs/classify10' or 'mnist'"),
    "data_dir": (None, (str, type(None)), "a folder or null"),
    "train_split": ("train", (str,), "a split name"),
    "validation_split": ("test", (str, type(None)), "a split name or null"),
    "max_train_examples": (None, (int, type(None)), "a positive integer or null"),
    "max_validation_examples": (None, (int, type(None)), "a positive integer or null"),
    "sequence_length": (None, (int, type(None)), "a positive integer or null"),
    "epochs": (5, (int,), "a positive integer"),
    "batch_size": (64, (int,), "a positive integer"),
    "learning_rate": (1e-3, _NUMBER, "a positive number"),
    "alpha": (0.5, _NUMBER, "a number in [0, 1]"),
    "reward_weighting": ("raw", (str,), "a weighting name"),
    "masked_self_loss": (False, (bool,), "true or false"),
    "metrics": ([], (list,), "a list of metric names"),
    "steps_per_execution": (1, (int,), "a positive integer"),
    "deterministic": (False, (bool,), "true or false"),
    "seed": (0, (int,), "an integer"),
}
_POSITIVE = ("max_train_examples", "max_validation_examples", "sequence_length", "epochs",
             "batch_size", "learning_rate", "steps_per_execution")


def load_train_recipe(recipe_dir: str, **overrides: Any) -> dict[str, Any]:
    """Read ``recipe_dir/config.json`` over the defaults and ``overrides``; check it.

    Raises:
        FileNotFoundError: no ``config.json`` in ``recipe_dir``.
        ValueError: invalid JSON, an unknown key, or a value of the wrong type or range.
    """
    path, given = read_recipe(recipe_dir)
    config = {key: spec[0] for key, spec in SCHEMA.items()}
    config.update(given)
    config.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(config) - set(SCHEMA))
    if unknown:
        raise ValueError(f"{path}: unknown recipe keys {unknown}; known: {sorted(SCHEMA)}.")
    for key, (_, kinds, description) in SCHEMA.items():
        value = config[key]
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if wrong_bool or not isinstance(value, kinds) or (
                key in _POSITIVE and value is not None and value <= 0):
            raise ValueError(f"{path}: `{key}` must be {description}, got {value!r}.")
    if config["model"] not in names():
        raise ValueError(f"{path}: `model` must be one of {names()}, got {config['model']!r}.")
    if config["dataset"] is None:
        raise ValueError(f"{path}: `dataset` is required.")
    if not 0 <= config["alpha"] <= 1:
        raise ValueError(f"{path}: `alpha` must be a number in [0, 1], got {config['alpha']!r}.")
    return config


# ------------------------------------------------------------------------------- data
def _is_text(config: dict[str, Any]) -> bool:
    return config["dataset"].split("/")[0] == "selfevo_text"


def _read_split(config: dict[str, Any], split: str, limit: int | None) -> dict[str, np.ndarray]:
    """One split as NumPy arrays: ``x`` and ``label`` (images) or ``x`` and ``next`` (text)."""
    if _is_text(config):
        dataset = load(config["dataset"], split=split, data_dir=config["data_dir"])
        if limit:
            dataset = dataset.take(limit)
        texts = [t.decode() for t in dataset.map(lambda e: e["text"]).as_numpy_iterator()]
        length = config["sequence_length"]
        ids = text.encode(texts, vocabulary_of(config["dataset"]),
                          None if length is None else length + 1)
        return {"x": ids[:, :-1], "next": ids[:, 1:]}
    arrays = load(config["dataset"], split=split, data_dir=config["data_dir"], batch_size=-1)
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    if limit:
        arrays = {key: value[:limit] for key, value in arrays.items()}
    return {"x": arrays["image"], "label": arrays["label"].astype(np.int32)}


def read_data(config: dict[str, Any]) -> tuple[dict, dict | None, dict[str, Any]]:
    """Train and validation arrays of a recipe, and what the model needs to know of them."""
    train = _read_split(config, config["train_split"], config["max_train_examples"])
    validation = None
    if config["validation_split"]:
        validation = _read_split(config, config["validation_split"],
                                 config["max_validation_examples"])
    if _is_text(config):
        info = {"vocabulary": vocabulary_of(config["dataset"])}
    else:
        info = {"input_shape": tuple(train["x"].shape[1:]),
                "num_classes": int(train["label"].max()) + 1}
    if len(train["x"]) < config["batch_size"]:
        raise ValueError(
            f"`batch_size`={config['batch_size']} is larger than the {len(train['x'])} training "
            "examples."
        )
    return train, validation, info


def _to_model_inputs(config: dict[str, Any], info: dict[str, Any]):
    """The map from a batch of arrays to ``(x, targets)`` for SelfEvolvingModel."""
    if _is_text(config):
        size = text.vocab_size(info["vocabulary"])
        return lambda batch: (batch["x"], {"self": tf.one_hot(batch["next"], size)})

    def images(batch):
        x = tf.cast(batch["x"], tf.float32) / 255.0
        policy = tf.one_hot(batch["label"], info["num_classes"])
        # Supervised training: every label is right, reward 1.
        return x, {"policy": policy, "reward": tf.ones_like(batch["label"], tf.float32)}

    return images


def epoch_dataset(arrays: dict[str, np.ndarray], batch_size: int, seed: int, first_epoch: int,
                  epochs: int, to_model) -> tuple[tf.data.Dataset, int]:
    """Batches of epochs ``first_epoch .. epochs - 1``, each shuffled by ``(seed, epoch)``.

    The order of epoch ``e`` does not depend on where training started, so a resumed run
    sees the same batches as an uninterrupted one.
    """
    size = len(arrays["x"])
    steps = size // batch_size
    tensors = {key: tf.constant(value) for key, value in arrays.items()}

    def epoch_order(epoch):
        keys = tf.random.stateless_uniform([size], tf.stack([seed, tf.cast(epoch, tf.int32)]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys)[: steps * batch_size])

    batches = (tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
               .batch(batch_size, drop_remainder=True))
    gather = lambda idx: to_model({k: tf.gather(v, idx) for k, v in tensors.items()})  # noqa: E731
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2), steps


def _validation_dataset(arrays, batch_size, to_model) -> tf.data.Dataset:
    return (tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
            .map(to_model).prefetch(2))


# ------------------------------------------------------------------------------ model
def build_model(config: dict[str, Any], info: dict[str, Any]) -> keras.Model:
    """The recipe's zoo model, compiled (call inside the strategy's scope)."""
    args = dict(config["model_args"])
    args.setdefault("seed", config["seed"])
    if config["model"] == "char_rnn":
        args.setdefault("vocabulary", info["vocabulary"])
    elif config["model"] == "mnist_cnn":
        args.setdefault("input_shape", info["input_shape"])
        args.setdefault("num_classes", info["num_classes"])
    else:
        raise ValueError(
            f"`model`={config['model']!r} is meta-learned: use 'keras-selfevo meta-train'."
        )
    model = build(config["model"], **args)
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
    config = load_train_recipe(recipe_dir, **merge_overrides(
        overrides, epochs=epochs, batch_size=batch_size, data_dir=data_dir))
    if strategy not in distribute.STRATEGIES:
        raise ValueError(f"Unknown `--strategy` {strategy!r}; expected one of "
                         f"{distribute.STRATEGIES}.")
    output = output or os.path.join("runs", os.path.basename(os.path.normpath(recipe_dir)))
    backup = os.path.join(output, "backup")
    if resume and not os.path.isdir(backup):
        raise ValueError(f"`--resume`: '{output}' holds no interrupted run to continue.")
    if not resume and os.path.isdir(backup):
        raise ValueError(f"'{output}' holds an interrupted run: pass --resume to continue it, "
                         "or choose another --output.")
    if config["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    chosen = distribute.get_strategy(strategy)  # before any other TensorFlow work
    keras.utils.set_random_seed(config["seed"])
    train_arrays, validation_arrays, info = read_data(config)

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
    to_model = _to_model_inputs(config, info)
    data, steps = epoch_dataset(train_arrays, config["batch_size"], config["seed"], first_epoch,
                                config["epochs"], to_model)
    validation = (_validation_dataset(validation_arrays, config["batch_size"], to_model)
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
        model.fit(data, epochs=config["epochs"], steps_per_epoch=steps,
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
