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
import sys
import tempfile
import time
from typing import Any

import h5py
import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import distribute, zoo
from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.plotting import save_curves
from keras_selfevo.data import language_data, text
from keras_selfevo.data.own_data import check_path, split_rows
from keras_selfevo.losses import WEIGHTINGS
from keras_selfevo.recipes import data, schema
from keras_selfevo.recipes.schema import Field
from keras_selfevo.training import CosineAlpha
from keras_selfevo.zoo import load_checkpoint

# The zoo models this command trains (with fit, on images or text).
MODELS = ("char_rnn", "gpt", "hub_gpt2", "mnist_cnn", "tabular", "text_classifier")
COMMAND = "train"
FIELDS: dict[str, Field] = {
    **schema.COMMON,
    "model": Field(None, (str,), f"one of {MODELS}", schema.one_of(*MODELS)),
    "dataset": Field(None, schema.OPTIONAL_STR,
                     "a TFDS name, e.g. 'selfevo_glyphs/classify10' or 'mnist', or null"),
    **schema.DATA,
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
    "alpha_end": Field(None, schema.OPTIONAL_NUMBER, "a number in [0, 1] or null (alpha stays "
                       "constant)", schema.unit_interval),
    "labeled_fraction": Field(None, schema.OPTIONAL_NUMBER, "a number in (0, 1] or null (all "
                              "labeled)", schema.share),
    "labeled_per_batch": Field(None, schema.OPTIONAL_INT, "a positive integer or null (labeled "
                               "images fall in batches as they come)", schema.positive_int),
    "reward_weighting": Field("raw", (str,), f"one of {tuple(WEIGHTINGS)}",
                              schema.one_of(*WEIGHTINGS)),
    "masked_self_loss": Field(False, (bool,), "true or false"),
    **schema.LOSSES,
    "metrics": Field([], (list,), "a list of metric names"),
    "steps_per_execution": Field(1, (int,), "a positive integer", schema.positive_int),
    "steps_per_epoch": Field(None, schema.OPTIONAL_INT, "a positive integer or null (the "
                             "whole split; corpora need it)", schema.positive_int),
    "optimizer": Field("adam", (str,), "'adam' or 'adamw'", schema.one_of("adam", "adamw")),
    "beta_1": Field(0.9, schema.NUMBER, "a number in [0, 1)",
                    lambda v, k: _checks.number(v, k, 0.0, 1.0, high_open=True)),
    "beta_2": Field(0.999, schema.NUMBER, "a number in [0, 1)",
                    lambda v, k: _checks.number(v, k, 0.0, 1.0, high_open=True)),
    "weight_decay": Field(0.0, schema.NUMBER, "a number ≥ 0",
                          schema.non_negative_number),
    "clip_norm": Field(None, schema.OPTIONAL_NUMBER, "a positive number or null",
                       schema.positive_number),
    "warmup_steps": Field(0, (int,), "an integer ≥ 0", schema.non_negative_int),
    "min_learning_rate": Field(None, schema.OPTIONAL_NUMBER, "a positive number or null (cosine "
                               "decay to it over the run when set)", schema.positive_number),
    "eval_window": Field(64, (int,), "a positive integer", schema.positive_int),
    "early_stopping": Field(None, schema.OPTIONAL_INT, "a positive integer (epochs of "
                            "patience) or null (train every epoch)", schema.positive_int),
    "sample_length": Field(300, (int,), "an integer ≥ 0",
                           schema.non_negative_int),
    "deterministic": Field(False, (bool,), "true or false"),
    "jit_compile": Field(False, (bool,), "true or false (compile the step with XLA)"),
    "pretrained": Field(None, schema.OPTIONAL_STR, "a .keras language model, a preset "
                        "(keras-selfevo presets), or null"),
}
FIELDS = schema.explained(FIELDS, {
    **schema.COMMON_MEANINGS,
    "model": "the zoo model to train",
    "dataset": "the dataset (a TFDS name); `data` (your own files) replaces it",
    "train_split": "the dataset's split to train on",
    "validation_split": "the split scored after every epoch (null: none)",
    "max_train_examples": "train on the first N examples only",
    "max_validation_examples": "score on the first N validation examples only",
    "sequence_length": "characters per training window (text)",
    "epochs": "passes over the training data (or of `steps_per_epoch` steps)",
    "batch_size": "examples per step, over all replicas together",
    "learning_rate": "the optimizer's step size (its peak with a schedule)",
    "alpha": "weight of the self-loss in alpha * L_self + (1 - alpha) * L_reinforce",
    "alpha_end": "alpha at the last step (a cosine from `alpha`)",
    "labeled_fraction": "keep the labels of this stratified share of the training images; "
                        "the others train the self-loss only",
    "labeled_per_batch": "labeled images in every batch (the rest unlabeled)",
    "reward_weighting": "how a reward becomes a weight w(r) of the reinforce term",
    "masked_self_loss": "score the self-loss on the masked elements only",
    "metrics": "Keras metrics of the policy output, e.g. ['categorical_accuracy']",
    "steps_per_execution": "steps per call into the compiled graph (must divide an epoch)",
    "steps_per_epoch": "steps per epoch (text corpora train on random windows)",
    "optimizer": "Adam, or AdamW (weight decay on matrices only)",
    "beta_1": "Adam's first-moment decay",
    "beta_2": "Adam's second-moment decay",
    "weight_decay": "AdamW's decoupled weight decay",
    "clip_norm": "clip the global gradient norm to this",
    "warmup_steps": "linear warm-up steps of the learning rate",
    "min_learning_rate": "with it, a cosine decay to it over the run",
    "eval_window": "characters per window of the validation nats/char",
    "early_stopping": "hold back 10% of the training rows; stop when their loss has not "
                      "improved for this many epochs and keep the best epoch's weights (as "
                      "scikit-learn's early_stopping; the validation split stays unseen)",
    "sample_length": "characters of the sample printed after training a language model",
    "deterministic": "use TensorFlow's deterministic ops (bit-identical reruns, slower)",
    "jit_compile": "compile the train step with XLA",
    "pretrained": "text_classifier: start its body from this language model (its vocabulary "
                  "is kept)",
    **schema.DATA_MEANINGS,
})


def load_train_recipe(recipe_dir: str,
                      overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read ``recipe_dir/config.json`` over the defaults and ``overrides``; check it.

    Raises:
        FileNotFoundError: no ``config.json`` in ``recipe_dir``.
        ValueError: invalid JSON, an unknown key, or a value of the wrong type or range.
    """
    path, config = schema.load(recipe_dir, FIELDS, overrides, COMMAND)
    if config["model"] is None:
        raise ValueError(f"{path}: `model` is required.")
    if config["data"] is not None:
        check_path(config["data"])
        data.own_data_kind(config)  # the model reads your files
    elif config["dataset"] is None:
        raise ValueError(f"{path}: `dataset` is required (or your own files: --data PATH).")
    if data.is_corpus(config) and not (config["steps_per_epoch"] and config["sequence_length"]):
        raise ValueError(f"{path}: a corpus ({config['data'] or config['dataset']}) trains on "
                         "random windows: set `steps_per_epoch` and `sequence_length`.")
    if config["steps_per_epoch"]:
        _check_steps_per_execution(config["steps_per_execution"], config["steps_per_epoch"],
                                   path)
    if config["labeled_per_batch"] is not None and config["labeled_fraction"] is None:
        raise ValueError(f"{path}: `labeled_per_batch` needs `labeled_fraction` (which images "
                         "keep their label).")
    if (config["labeled_per_batch"] or 0) >= config["batch_size"]:
        raise ValueError(f"{path}: `labeled_per_batch`={config['labeled_per_batch']} must be "
                         f"less than `batch_size`={config['batch_size']} (the rest of each "
                         "batch is unlabeled).")
    if config["early_stopping"] is not None and data.is_corpus(config):
        raise ValueError(f"{path}: `early_stopping` applies to examples (images, rows, "
                         "labelled texts), not to a text corpus trained on random windows.")
    if config["labeled_fraction"] is not None:
        if data.is_corpus(config) or data.is_text(config) or config["data"]:
            raise ValueError(f"{path}: `labeled_fraction` applies to labeled image datasets "
                             "(your own images: put the unlabeled ones under unlabeled/), "
                             f"not {config['data'] or config['dataset']!r}.")
        if config["reward_weighting"] != "raw":
            raise ValueError(f"{path}: `labeled_fraction` needs `reward_weighting`='raw' (an "
                             "unlabeled image has reward 0, which only 'raw' leaves out of "
                             f"the policy term); got {config['reward_weighting']!r}.")
    return config


def _optimizer(config: dict[str, Any]) -> keras.optimizers.Optimizer:
    """Adam or AdamW with the recipe's betas, clipping and learning-rate schedule.

    With ``min_learning_rate``, the rate warms up linearly over ``warmup_steps`` and then
    follows a cosine down to ``min_learning_rate`` at the last step (nanoGPT's schedule).
    AdamW decays only weights of rank ≥ 2 (matrices, embeddings), as nanoGPT does.
    """
    rate: Any = config["learning_rate"]
    total = config["epochs"] * (config["steps_per_epoch"] or 0)
    if config["min_learning_rate"] is not None:
        if not total:
            raise ValueError("`min_learning_rate` needs `steps_per_epoch` (the schedule's "
                             "length).")
        warmup = config["warmup_steps"]
        rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else rate, max(1, total - warmup),
            alpha=config["min_learning_rate"] / config["learning_rate"],
            warmup_target=rate if warmup else None, warmup_steps=warmup)
    common = dict(learning_rate=rate, beta_1=config["beta_1"], beta_2=config["beta_2"],
                  global_clipnorm=config["clip_norm"])
    if config["optimizer"] == "adamw":
        return keras.optimizers.AdamW(weight_decay=config["weight_decay"], **common)
    return keras.optimizers.Adam(**common)


def build_model(config: dict[str, Any], info: dict[str, Any],
                total_steps: int | None = None) -> keras.Model:
    """The recipe's zoo model, compiled (call inside the strategy's scope).

    ``info`` is what the data fixes (input shape and classes, or the vocabulary); it fills
    the builder arguments the recipe leaves open. With ``alpha_end``, alpha follows a cosine
    from ``alpha`` to ``alpha_end`` over the run's ``total_steps``
    (:class:`~keras_selfevo.training.CosineAlpha`).
    """
    model = zoo.build(config["model"], **schema.model_arguments(config, info))
    optimizer = _optimizer(config)
    if isinstance(optimizer, keras.optimizers.AdamW):
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in model.trainable_variables if len(v.shape) < 2])
    alpha: Any = float(config["alpha"])
    if config["alpha_end"] is not None:
        if not total_steps:
            raise ValueError("`alpha_end` needs the run's length (`total_steps`).")
        alpha = CosineAlpha(alpha, float(config["alpha_end"]), total_steps)
    model.compile(**schema.loss_arguments(config), optimizer=optimizer,
                  alpha=alpha, reward_weighting=config["reward_weighting"],
                  masked_self_loss=config["masked_self_loss"], metrics=config["metrics"] or None,
                  steps_per_execution=config["steps_per_execution"],
                  jit_compile=config["jit_compile"])
    return model


def _backup_readable(weights: str, metadata: str) -> bool:
    try:
        with h5py.File(weights, "r"), open(metadata) as handle:
            return int(json.load(handle)["epoch"]) >= 0
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _recover_backup(backup: str, output: str) -> None:
    """Fall back to the backup before the last one when the last is damaged.

    BackupAndRestore keeps two (``double_checkpoint=True``); a write cut off by a kill leaves
    the last one unreadable, and the one before it is restored in its place. When both are
    damaged the run cannot resume: a ``ValueError`` names the file and says how to go on.
    """
    weights = os.path.join(backup, "latest.weights.h5")
    metadata = os.path.join(backup, "training_metadata.json")
    if not os.path.isdir(backup) or _backup_readable(weights, metadata):
        return
    if not _backup_readable(weights + ".bkp", metadata + ".bkp"):
        if not os.path.isfile(weights):
            return  # no weights saved yet: the run starts from its first epoch
        checkpoint = os.path.join(output, "checkpoint.keras")
        saved = (f" Its last epoch's model, {checkpoint!r}, is intact: load it with "
                 "keras.saving.load_model." if os.path.isfile(checkpoint) else "")
        raise ValueError(f"`--resume`: the backup {weights!r} (and the one before it) is "
                         f"damaged (a write was interrupted): the run cannot resume from it. "
                         f"Start over with another --output, or delete {backup!r} to train "
                         f"again in {output!r}.{saved}")
    print(f"[train] the last backup in {backup} is damaged (a write was interrupted); "
          "resuming from the one before it", file=sys.stderr)
    shutil.copyfile(weights + ".bkp", weights)
    shutil.copyfile(metadata + ".bkp", metadata)


def _resumed_epoch(metadata: str, output: str) -> int:
    """The epoch an interrupted run stopped at, from BackupAndRestore's metadata file."""
    try:
        with open(metadata) as handle:
            return int(json.load(handle)["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"`--resume`: the backup's metadata file {metadata!r} is unreadable "
                         f"({error}); it was probably cut off by an interruption. Start over "
                         f"with another --output, or delete {os.path.dirname(metadata)!r} to "
                         f"train again in {output!r}.") from None


def _check_steps_per_execution(steps_per_execution: int, steps_per_epoch: int,
                               where: str = "the recipe") -> None:
    """Refuse a ``steps_per_execution`` that does not divide the epoch's steps.

    Keras runs whole executions on the recipes' streams: the last one of an epoch would
    take batches of the next epoch, moving every later epoch (its checkpoint, and where a
    resumed run starts) off its boundary.
    """
    if steps_per_epoch % steps_per_execution:
        divisors = [d for d in range(1, steps_per_epoch + 1) if steps_per_epoch % d == 0]
        raise ValueError(
            f"{where}: `steps_per_execution`={steps_per_execution} must divide the "
            f"{steps_per_epoch} steps of an epoch (`steps_per_epoch`, or the split's "
            f"batches); e.g. one of {divisors[-6:]}.")


class TrainingRate(keras.callbacks.Callback):
    """Steps per second of ``fit`` after ``warmup`` steps (tracing and compiling excluded).

    Steps are counted by the optimizer, so a callback call that ends several steps
    (``steps_per_execution`` > 1) counts them all; the clock starts at the first call
    after ``warmup`` steps.
    """

    def __init__(self, warmup: int = 20):
        super().__init__()
        self.warmup, self.steps, self.rate = warmup, 0, None
        self._start = self._first = None
        self._first_step = self._timed_from = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._first = time.perf_counter()
        self._first_step = self._step()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps = self._step() - self._first_step
        if self._start is None and self.steps >= self.warmup:
            self._start, self._timed_from = time.perf_counter(), self.steps

    def _step(self) -> int:
        # A plain read: under a strategy the counter is a distributed variable.
        return int(tf.convert_to_tensor(self.model.optimizer.iterations.value))

    def on_train_end(self, logs: dict | None = None) -> None:
        now = time.perf_counter()
        self.seconds = now - (self._first or now)
        if self._start is not None and self.steps > self._timed_from:
            self.rate = (self.steps - self._timed_from) / (now - self._start)


class HeldOutEarlyStopping(keras.callbacks.Callback):
    """Stop when the loss on rows held back from training stops improving; keep the best.

    After every epoch the model is evaluated on ``dataset`` (rows taken from the training
    split, never the validation split, whose score stays an unbiased estimate); its
    reinforce loss (or the total loss when there is none) is logged as
    ``early_stopping_loss``. After ``patience`` epochs without a new best, training stops,
    and at its end the best epoch's weights are restored.
    """

    def __init__(self, dataset: tf.data.Dataset, patience: int):
        super().__init__()
        self.dataset, self.patience = dataset, patience
        self.best, self.best_epoch, self.best_weights, self._wait = np.inf, None, None, 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        scores = self.model.evaluate(self.dataset, verbose=0, return_dict=True)
        loss = float(scores.get("reinforce_loss", scores["loss"]))
        if logs is not None:
            logs["early_stopping_loss"] = loss
        if loss < self.best:
            self.best, self.best_epoch, self._wait = loss, epoch, 0
            self.best_weights = self.model.get_weights()
        else:
            self._wait += 1
            if self._wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def held_back_rows(arrays: dict[str, Any], seed: int,
                   fraction: float = 0.1) -> tuple[dict[str, Any], dict[str, Any]]:
    """The training rows split into the rows trained on and ``fraction`` held back."""
    count = len(arrays["label"] if "label" in arrays else arrays["x"])
    held = np.random.default_rng([seed, 4]).random(count) < fraction
    if not held.any() or held.all():
        raise ValueError(f"`early_stopping`: the {count} training rows are too few to hold "
                         f"back {fraction:.0%} of them.")
    return split_rows(arrays, held, seed)


class TermsProgbar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar without the logs of a term whose weight is fixed at zero.

    A recipe with alpha fixed at 1 (a language model) computes no reinforce term and one
    fixed at 0 no self term: their zeros and the constant alpha are left off the bar; the
    history and the CSV log keep every key.
    """

    def __init__(self, hidden: set[str]):
        super().__init__()
        self.hidden = set(hidden)

    def _shown(self, logs: dict | None) -> dict | None:
        return None if logs is None else {k: v for k, v in logs.items()
                                          if k not in self.hidden}

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        super().on_train_batch_end(batch, self._shown(logs))

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        super().on_test_batch_end(batch, self._shown(logs))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, self._shown(logs))

    def on_test_end(self, logs: dict | None = None) -> None:
        super().on_test_end(self._shown(logs))


def fixed_zero_terms(config: dict[str, Any]) -> set[str]:
    """The log keys of the terms a recipe's constant alpha (1 or 0) switches off."""
    if config["alpha_end"] is not None or config["alpha"] not in (0, 1):
        return set()
    off = "reinforce_loss" if config["alpha"] == 1 else "self_loss"
    return {off, f"val_{off}", "alpha", "val_alpha"}


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch, validation included) to the logs."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def _pretrained(config: dict[str, Any]) -> keras.Model | None:
    """The recipe's ``pretrained`` language model, loaded and checked, or None."""
    if not config["pretrained"]:
        return None
    model = load_checkpoint(config["pretrained"])
    if not callable(getattr(model, "generate_ids", None)) or model.vocabulary is None:
        raise ValueError(f"`pretrained` ({config['pretrained']}) must be a language model of "
                         f"the zoo with a vocabulary; it holds a {type(model).__name__}.")
    return model


def own_data_scores(model: keras.Model, validation: dict[str, Any],
                    info: dict[str, Any]) -> dict[str, float]:
    """The held-out part of the user's data: accuracy, or R² for a regression."""
    labels = np.asarray(validation["label"])
    out = model.predict(validation["x"], batch_size=256, verbose=0)
    predictions = np.asarray(out["policy"] if isinstance(out, dict) else out)
    if info.get("kind") == "table" and info["table"]["task"] == "regression":
        present = ~np.isnan(labels)
        residual = np.sum((labels[present] - predictions[present, 0]) ** 2)
        total = np.sum((labels[present] - labels[present].mean()) ** 2)
        return {"validation_r2": float(1 - residual / total)}
    labeled = labels >= 0
    return {"validation_accuracy": float(np.mean(predictions[labeled].argmax(-1)
                                                 == labels[labeled]))}


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
    config = load_train_recipe(recipe_dir, schema.merge_overrides(
        overrides, epochs=epochs, batch_size=batch_size, data_dir=data_dir))
    _checks.lookup(distribute.STRATEGIES, strategy, "--strategy")
    output = schema.output_folder(recipe_dir, output)
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"`--output` {output!r} is an existing file; expected a folder (new "
                         "or from an earlier run).")
    backup = os.path.join(output, "backup")
    schema.check_resume(output, "backup", resume, "interrupted run")
    if resume:
        _recover_backup(backup, output)
    if resume and os.path.isfile(os.path.join(backup, "training_metadata.json")):
        _resumed_epoch(os.path.join(backup, "training_metadata.json"), output)  # readable?
    if config["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    chosen = distribute.get_strategy(strategy)  # before any other TensorFlow work
    keras.utils.set_random_seed(config["seed"])
    corpus = data.is_corpus(config)
    pretrained = _pretrained(config)
    train_arrays, validation_arrays, info = (
        data.read_corpus(config) if corpus
        else data.read_data(config, pretrained and pretrained.vocabulary))
    if pretrained is not None:
        info["pretrained"] = pretrained
    for note in info.get("notes", []):
        print(f"[train] {note}")

    chief = distribute.is_chief()
    if not chief:
        # Other workers keep their backups apart and write nothing else. Beside the chief's,
        # not inside it: the chief deletes its backup folder when training ends, maybe while
        # another worker is still writing its own.
        backup = os.path.join(output, f"backup-worker-{distribute.task_index()}")
    first_epoch = 0
    metadata = os.path.join(backup, "training_metadata.json")
    if resume and os.path.isfile(metadata):
        first_epoch = _resumed_epoch(metadata, output)

    stopper = None
    if corpus:
        steps = config["steps_per_epoch"]
        batches = language_data.window_batches(train_arrays, config["sequence_length"],
                                      config["batch_size"], config["seed"], first_epoch * steps,
                                      config["epochs"] * steps)
        validation = None  # scored once at the end, over the whole split
    else:
        to_model = data.to_model_inputs(config, info)
        if config["early_stopping"]:
            train_arrays, held_back = held_back_rows(train_arrays, config["seed"])
            stopper = HeldOutEarlyStopping(
                data.validation_dataset(held_back, config["batch_size"], to_model),
                config["early_stopping"])
        if config["labeled_per_batch"]:
            batches, steps = data.mixed_epoch_dataset(
                train_arrays, config["labeled_per_batch"], config["batch_size"], config["seed"],
                first_epoch, config["epochs"], to_model)
        else:
            batches, steps = data.epoch_dataset(train_arrays, config["batch_size"],
                                                config["seed"], first_epoch, config["epochs"],
                                                to_model)
        steps = config["steps_per_epoch"] or steps
        validation = (data.validation_dataset(validation_arrays, config["batch_size"],
                                              to_model) if validation_arrays else None)
    _check_steps_per_execution(config["steps_per_execution"], steps)
    with chosen.scope():
        model = build_model(config, info, config["epochs"] * steps)
    # Every input is checked and the model built: only now is anything written.
    scratch = None if chief else tempfile.mkdtemp(prefix="kse-worker-")
    os.makedirs(output, exist_ok=True)
    rate = TrainingRate()
    logs = os.path.join(output if chief else scratch, "logs")
    history_csv = os.path.join(output if chief else scratch, "history.csv")
    callbacks = [
        EpochTimer(),
        rate,
        keras.callbacks.CSVLogger(history_csv, append=resume),
        keras.callbacks.BackupAndRestore(backup, double_checkpoint=True),
        keras.callbacks.TensorBoard(logs),
    ]
    if chief:
        callbacks.append(keras.callbacks.ModelCheckpoint(os.path.join(output, "checkpoint.keras")))
    hidden = fixed_zero_terms(config)
    if hidden:
        callbacks.append(TermsProgbar(hidden))
    if stopper is not None:
        callbacks.insert(0, stopper)  # first: its loss reaches the CSV log and the history
    try:
        # The batches are already in their (seeded) order.
        model.fit(batches, epochs=config["epochs"], steps_per_epoch=steps, shuffle=False,
                  validation_data=validation, callbacks=callbacks, verbose=verbose)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    summary_stop = {}
    if stopper is not None and stopper.best_weights is not None:
        summary_stop["early_stopping_epoch"] = stopper.best_epoch + 1
        if chief:  # the checkpoint holds the best epoch's weights, not the last
            model.save(os.path.join(output, "checkpoint.keras"))
    digest = weights_digest(model)
    result = {"output": output, "weights_sha256": digest, "initial_epoch": first_epoch,
              "history": None}
    summary: dict[str, Any] = {"train_seconds": rate.seconds, **summary_stop}
    if rate.rate is not None:
        summary["steps_per_second"] = rate.rate
        if corpus:
            summary["train_chars_per_second"] = (rate.rate * config["batch_size"]
                                                 * config["sequence_length"])
    if corpus and validation_arrays is not None:
        summary["validation_nats_per_char"] = model.nats_per_char(validation_arrays,
                                                                  config["eval_window"])
    if corpus and config["sample_length"]:
        prompt = train_arrays[None, :1]  # the corpus's first character
        ids = model.generate(prompt, config["sample_length"], temperature=1.0,
                             seed=config["seed"])
        summary["sample"] = text.decode_stream(ids[0], info["vocabulary"])
    if not corpus and config["data"] and validation_arrays is not None:
        summary.update(own_data_scores(model, validation_arrays, info))
    result["summary"] = summary
    if chief:
        history = _read_history(history_csv)
        result["history"] = history
        with open(os.path.join(output, "history.json"), "w") as handle:
            json.dump({"config": config, "history": history, "weights_sha256": digest,
                       **summary}, handle, indent=2)
        keys = [k for k in ("loss", "self_loss", "reinforce_loss", "val_loss", "val_self_loss",
                            "val_reinforce_loss") if k in history]
        save_curves(history, keys, os.path.join(output, "loss_curve.png"),
                    f"{config['name'] or config['model']}: training curves")
    return result
