"""Meta-learning recipes: ``models/<name>/config.json`` → meta-train, evaluate, write results."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo.data.tasks import sinusoid_tasks
from keras_selfevo.meta.meta_learner import ALGORITHMS, MetaLearner

DEFAULTS: dict[str, Any] = {
    "task": "sinusoid",
    "algorithm": "maml",
    "inner_lr": 0.01,
    "inner_steps": 1,
    "meta_batch_size": 25,
    "shots": 10,
    "queries": 10,
    "learning_rate": 1e-3,
    "iterations": 70000,
    "evaluate_at": [10000, 70000],
    "eval_tasks": 1000,
    "eval_queries": 100,
    "eval_steps": [1, 10],
    "steps_per_execution": 50,
    "seed": 0,
}


def load_recipe(recipe_dir: str, **overrides: Any) -> dict[str, Any]:
    """Read ``recipe_dir/config.json`` over the defaults; check keys and types."""
    path = os.path.join(recipe_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No recipe at '{recipe_dir}': expected a file {path}.")
    with open(path) as handle:
        try:
            config = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    config = {**DEFAULTS, **config, **{k: v for k, v in overrides.items() if v is not None}}
    unknown = set(config) - set(DEFAULTS) - {"name", "description"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    if config["task"] != "sinusoid":
        raise ValueError(f"{path}: `task` must be 'sinusoid', got {config['task']!r}.")
    if config["algorithm"] not in ALGORITHMS:
        raise ValueError(f"{path}: `algorithm` must be one of {ALGORITHMS}.")
    for key, kind in (("iterations", int), ("meta_batch_size", int), ("shots", int),
                      ("queries", int), ("eval_tasks", int), ("inner_steps", int),
                      ("inner_lr", (int, float)), ("learning_rate", (int, float))):
        if isinstance(config[key], bool) or not isinstance(config[key], kind) or config[key] <= 0:
            raise ValueError(f"{path}: `{key}` must be a positive number, got {config[key]!r}.")
    if config["eval_tasks"] % config["meta_batch_size"]:
        raise ValueError(f"{path}: `eval_tasks` must be a multiple of `meta_batch_size`.")
    return config


def sinusoid_mlp(seed: int = 0) -> keras.Model:
    """The MAML regression network: 1-40-40-1 with ReLU."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(40, activation="relu"),
        keras.layers.Dense(40, activation="relu"),
        keras.layers.Dense(1),
    ], name="sinusoid_mlp")


def evaluate_post_adaptation(learner: MetaLearner, config: dict[str, Any]) -> dict[str, Any]:
    """Query MSE on ``eval_tasks`` fresh tasks after each of ``eval_steps`` inner steps."""
    batches = config["eval_tasks"] // config["meta_batch_size"]
    tasks = sinusoid_tasks(config["shots"], config["eval_queries"], config["meta_batch_size"],
                           seed=config["seed"] + 10_000, num_meta_batches=batches)
    results = {}
    for steps in config["eval_steps"]:
        losses_fn = tf.function(lambda data, s=steps: learner.task_losses(data, s))
        losses = np.concatenate([losses_fn(data).numpy() for data in tasks])
        results[f"{steps}_step"] = {
            "mse": float(losses.mean()),
            "ci95": float(1.96 * losses.std(ddof=1) / np.sqrt(len(losses))),
            "tasks": int(len(losses)),
        }
    return results


def meta_train(recipe_dir: str, output: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Meta-train the recipe, evaluating at ``evaluate_at`` iterations; write results.json."""
    config = load_recipe(recipe_dir, **overrides)
    output = output or os.path.join("runs", os.path.basename(os.path.normpath(recipe_dir)),
                                    config["algorithm"])
    os.makedirs(output, exist_ok=True)
    learner = MetaLearner(sinusoid_mlp(config["seed"]), config["algorithm"],
                          inner_lr=config["inner_lr"], inner_steps=config["inner_steps"])
    learner.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                    steps_per_execution=config["steps_per_execution"])
    checkpoints = sorted({i for i in config["evaluate_at"] if i <= config["iterations"]}
                         | {config["iterations"]})
    done, report = 0, {"config": config, "evaluations": {}}
    start = time.perf_counter()
    for checkpoint in checkpoints:
        train = sinusoid_tasks(config["shots"], config["queries"], config["meta_batch_size"],
                               seed=config["seed"], num_meta_batches=checkpoint - done,
                               first_meta_batch=done).prefetch(tf.data.AUTOTUNE)
        learner.fit(train, epochs=1, verbose=0)
        done = checkpoint
        elapsed = time.perf_counter() - start
        report["evaluations"][str(checkpoint)] = {
            **evaluate_post_adaptation(learner, config),
            "train_seconds": elapsed,
        }
        scores = report["evaluations"][str(checkpoint)]
        summary = ", ".join(f"{k} MSE {v['mse']:.3f} ± {v['ci95']:.3f}"
                            for k, v in scores.items() if k != "train_seconds")
        print(f"[meta-train] {config['algorithm']} {checkpoint} iterations "
              f"({checkpoint / elapsed:.0f} it/s): {summary}")
    learner.save(os.path.join(output, "learner.keras"))
    with open(os.path.join(output, "results.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    return report
