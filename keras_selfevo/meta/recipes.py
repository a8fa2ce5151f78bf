"""Meta-learning recipes: ``models/<name>/config.json`` → meta-train, evaluate, write results.

Two task families: ``"sinusoid"`` (regression, scored by query MSE) and ``"episodes"``
(N-way K-shot classification on a labeled TFDS dataset, scored by query accuracy). Scores
are means over ``eval_tasks`` fresh tasks with a 95% confidence interval.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo.data.episodes import episodes
from keras_selfevo.data.loading import load
from keras_selfevo.data.tasks import sinusoid_tasks
from keras_selfevo.meta.meta_learner import ALGORITHMS, MetaLearner
from keras_selfevo.recipe_files import read_recipe
from keras_selfevo.zoo.registry import build

DEFAULTS: dict[str, Any] = {
    "task": "sinusoid",
    "model": "sinusoid_mlp",
    "model_args": {},
    "algorithm": "maml",
    "inner_lr": 0.01,
    "inner_steps": 1,
    "adapt_layers": None,
    "meta_batch_size": 25,
    "shots": 10,
    "queries": 10,
    "ways": 5,
    "dataset": "selfevo_glyphs",
    "rotations": False,
    "data_dir": None,
    "learning_rate": 1e-3,
    "iterations": 70000,
    "evaluate_at": [10000, 70000],
    "eval_tasks": 1000,
    "eval_queries": 100,
    "eval_steps": [1, 10],
    "eval_split": "test",
    "steps_per_execution": 50,
    "seed": 0,
}
TASKS = ("sinusoid", "episodes")


def _fail(path: str, message: str) -> None:
    raise ValueError(f"{path}: {message}")


def load_recipe(recipe_dir: str, **overrides: Any) -> dict[str, Any]:
    """Read ``recipe_dir/config.json`` over the defaults; check keys and types."""
    path, config = read_recipe(recipe_dir)
    config = {**DEFAULTS, **config, **{k: v for k, v in overrides.items() if v is not None}}
    unknown = set(config) - set(DEFAULTS) - {"name", "description"}
    if unknown:
        _fail(path, f"unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    if config["task"] not in TASKS:
        _fail(path, f"`task` must be one of {TASKS}, got {config['task']!r}.")
    if config["algorithm"] not in ALGORITHMS:
        _fail(path, f"`algorithm` must be one of {ALGORITHMS}.")
    for key, kind in (("iterations", int), ("meta_batch_size", int), ("shots", int),
                      ("queries", int), ("ways", int), ("eval_tasks", int), ("inner_steps", int),
                      ("eval_queries", int), ("inner_lr", (int, float)),
                      ("learning_rate", (int, float))):
        if isinstance(config[key], bool) or not isinstance(config[key], kind) or config[key] <= 0:
            _fail(path, f"`{key}` must be a positive number, got {config[key]!r}.")
    if not isinstance(config["model_args"], dict):
        _fail(path, f"`model_args` must be an object of builder arguments, got "
                    f"{config['model_args']!r}.")
    if config["eval_tasks"] % config["meta_batch_size"]:
        _fail(path, "`eval_tasks` must be a multiple of `meta_batch_size`.")
    return config


def _learner(config: dict[str, Any]) -> MetaLearner:
    args = {"seed": config["seed"], **config["model_args"]}
    if config["task"] == "sinusoid":
        net = build(config["model"], **args)
        loss: Any = "mean_squared_error"
    else:
        net = build(config["model"], **{"num_classes": config["ways"], **args})
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return MetaLearner(net, config["algorithm"], inner_lr=config["inner_lr"],
                       inner_steps=config["inner_steps"], loss=loss,
                       adapt_layers=config["adapt_layers"])


def _tasks(config: dict[str, Any], split: str, queries: int, seed: int, batches: int,
           first: int = 0) -> tf.data.Dataset:
    if config["task"] == "sinusoid":
        return sinusoid_tasks(config["shots"], queries, config["meta_batch_size"], seed=seed,
                              num_meta_batches=batches, first_meta_batch=first)
    labeled = load(config["dataset"], split=split, data_dir=config["data_dir"])
    return episodes(labeled, config["ways"], config["shots"], queries,
                    config["meta_batch_size"], rotations=config["rotations"], seed=seed,
                    num_meta_batches=batches, first_meta_batch=first)


def _mean_ci(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()),
            "ci95": float(1.96 * values.std(ddof=1) / np.sqrt(len(values))),
            "tasks": int(len(values))}


def evaluate_post_adaptation(learner: MetaLearner, config: dict[str, Any]) -> dict[str, Any]:
    """Query loss (and accuracy, for classification) on ``eval_tasks`` fresh tasks.

    One result per number of inner steps in ``eval_steps``, as mean and 95% interval.
    """
    batches = config["eval_tasks"] // config["meta_batch_size"]
    tasks = _tasks(config, config["eval_split"], config["eval_queries"], config["seed"] + 10_000,
                   batches)
    results = {}
    for steps in config["eval_steps"]:
        predict = tf.function(lambda data, s=steps: learner.task_predictions(data, s))
        losses, accuracies = [], []
        for data in tasks:
            loss, prediction = predict(data)
            losses.append(loss.numpy())
            if config["task"] == "episodes":
                hits = np.argmax(prediction.numpy(), -1) == data[1][1].numpy()
                accuracies.append(hits.mean(axis=1))
        key = f"{steps}_step"
        if config["task"] == "sinusoid":
            scores = _mean_ci(np.concatenate(losses))
            results[key] = {"mse": scores["mean"], "ci95": scores["ci95"],
                            "tasks": scores["tasks"]}
        else:
            results[key] = {"loss": _mean_ci(np.concatenate(losses)),
                            "accuracy": _mean_ci(np.concatenate(accuracies))}
    return results


def _summary(scores: dict[str, Any]) -> str:
    parts = []
    for key, value in scores.items():
        if "mse" in value:
            parts.append(f"{key} MSE {value['mse']:.3f} ± {value['ci95']:.3f}")
        else:
            acc = value["accuracy"]
            parts.append(f"{key} accuracy {acc['mean']:.3f} ± {acc['ci95']:.3f}")
    return ", ".join(parts)


def meta_train(recipe_dir: str, output: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Meta-train the recipe, evaluating at ``evaluate_at`` iterations; write results.json."""
    config = load_recipe(recipe_dir, **overrides)
    output = output or os.path.join("runs", os.path.basename(os.path.normpath(recipe_dir)),
                                    config["algorithm"])
    os.makedirs(output, exist_ok=True)
    learner = _learner(config)
    metrics = ["sparse_categorical_accuracy"] if config["task"] == "episodes" else None
    learner.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                    steps_per_execution=config["steps_per_execution"], metrics=metrics)
    checkpoints = sorted({i for i in config["evaluate_at"] if i <= config["iterations"]}
                         | {config["iterations"]})
    done, report = 0, {"config": config, "evaluations": {}}
    start = time.perf_counter()
    for checkpoint in checkpoints:
        train = _tasks(config, "train", config["queries"], config["seed"], checkpoint - done,
                       first=done).prefetch(tf.data.AUTOTUNE)
        learner.fit(train, epochs=1, verbose=0)
        done = checkpoint
        elapsed = time.perf_counter() - start
        scores = evaluate_post_adaptation(learner, config)
        report["evaluations"][str(checkpoint)] = {**scores, "train_seconds": elapsed}
        print(f"[meta-train] {config['algorithm']} {checkpoint} iterations "
              f"({checkpoint / elapsed:.2f} it/s): {_summary(scores)}", flush=True)
    learner.save(os.path.join(output, "learner.keras"))
    with open(os.path.join(output, "results.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    return report
