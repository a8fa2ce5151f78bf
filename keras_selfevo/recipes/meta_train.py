"""Meta-learning recipes: ``models/<name>/config.json`` → meta-train, evaluate, write results.

Three task families: ``"sinusoid"`` (regression, scored by query MSE), ``"episodes"``
(N-way K-shot classification on a labeled TFDS dataset, scored by query accuracy) and
``"text"`` (a language model adapting to one Shakespeare play from ``shots`` windows,
scored by query nats/char; training tasks from the 32 training plays, evaluation tasks from
the six held-out plays of ``test``). Scores are means over ``eval_tasks`` fresh tasks with a
95% confidence interval.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import zoo
from keras_selfevo.data import shakespeare
from keras_selfevo.data.episodes import episodes
from keras_selfevo.data.language_data import shakespeare_streams, text_tasks
from keras_selfevo.data.loading import load
from keras_selfevo.data.own_data import check_path
from keras_selfevo.data.sinusoid import sinusoid_tasks
from keras_selfevo.meta.meta_learner import ALGORITHMS, MetaLearner
from keras_selfevo.recipes import schema
from keras_selfevo.recipes.data import folder_classes
from keras_selfevo.recipes.schema import Field

TASKS = ("sinusoid", "episodes", "text")
# The zoo models this command meta-trains.
MODELS = ("char_rnn", "conv4", "gpt", "hub_gpt2", "sinusoid_mlp")
COMMAND = "meta-train"
_POSITIVE_INT = "a positive integer"
FIELDS: dict[str, Field] = {
    **schema.COMMON,
    "task": Field("sinusoid", (str,), f"one of {TASKS}", schema.one_of(*TASKS)),
    "model": Field("sinusoid_mlp", (str,), f"one of {MODELS}", schema.one_of(*MODELS)),
    "algorithm": Field("maml", (str,), f"one of {ALGORITHMS}", schema.one_of(*ALGORITHMS)),
    "inner_lr": Field(0.01, schema.NUMBER, "a positive number", schema.positive_number),
    "inner_steps": Field(1, (int,), _POSITIVE_INT, schema.positive_int),
    "adapt_layers": Field(None, (list, type(None)), "a list of layer names or null"),
    "meta_batch_size": Field(25, (int,), _POSITIVE_INT, schema.positive_int),
    "shots": Field(10, (int,), _POSITIVE_INT, schema.positive_int),
    "queries": Field(10, (int,), _POSITIVE_INT, schema.positive_int),
    "ways": Field(5, (int,), _POSITIVE_INT, schema.positive_int),
    "dataset": Field("selfevo_glyphs", (str,), "a TFDS name"),
    "data": schema.DATA["data"], "image_size": schema.DATA["image_size"],
    "rotations": Field(False, (bool,), "true or false"),
    "window": Field(64, (int,), _POSITIVE_INT, schema.positive_int),
    "learning_rate": Field(1e-3, schema.NUMBER, "a positive number", schema.positive_number),
    "iterations": Field(70000, (int,), _POSITIVE_INT, schema.positive_int),
    "evaluate_at": Field([10000, 70000], (list,), "a list of iteration counts"),
    "eval_tasks": Field(1000, (int,), _POSITIVE_INT, schema.positive_int),
    "eval_queries": Field(100, (int,), _POSITIVE_INT, schema.positive_int),
    "eval_steps": Field([1, 10], (list,), "a list of inner-step counts"),
    "eval_split": Field("test", (str,), "a split name"),
    "steps_per_execution": Field(50, (int,), _POSITIVE_INT, schema.positive_int),
}
FIELDS = schema.explained(FIELDS, {
    **schema.COMMON_MEANINGS, **schema.DATA_MEANINGS,
    "task": "the task family: sinusoid regression, N-way K-shot image episodes, or text "
            "(a play's windows)",
    "model": "the zoo model meta-learned",
    "algorithm": "the MAML family member",
    "inner_lr": "the inner-loop step size (Meta-SGD's initial rates)",
    "inner_steps": "inner-loop steps in training",
    "adapt_layers": "ANIL: the layers that adapt in the inner loop",
    "meta_batch_size": "tasks per meta-step",
    "shots": "support examples per class (episodes) or windows (text) of a task",
    "queries": "query examples per class or windows of a task in training",
    "ways": "classes per episode",
    "dataset": "the labelled dataset episodes are drawn from (a TFDS name)",
    "rotations": "rotated classes (×4), as MAML's Omniglot",
    "window": "characters per text window",
    "learning_rate": "the outer optimizer's step size",
    "iterations": "meta-iterations in all",
    "evaluate_at": "meta-iterations after which fresh tasks are scored",
    "eval_tasks": "fresh tasks scored each time (a multiple of the meta-batch)",
    "eval_queries": "query examples per class (or windows) when scoring",
    "eval_steps": "inner-step counts scored",
    "eval_split": "the split the scored tasks come from",
    "steps_per_execution": "meta-steps per call into the compiled graph",
})


def load_recipe(recipe_dir: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read ``recipe_dir/config.json`` over the defaults; check keys, types and ranges."""
    path, config = schema.load(recipe_dir, FIELDS, overrides, COMMAND)
    if config["data"] is not None:
        check_path(config["data"])
        if config["task"] != "episodes" or zoo.data_kind(config["model"]) != "images":
            raise ValueError(f"`data`: the {config['task']!r} tasks of zoo model "
                             f"{config['model']!r} do not train on your own files; a folder of "
                             "images makes few-shot tasks for task 'episodes' (e.g. recipe "
                             "maml_glyphs).")
    if config["eval_tasks"] % config["meta_batch_size"]:
        source = ("the command line" if {"eval_tasks", "meta_batch_size"} & set(overrides or {})
                  else path)
        raise ValueError(f"{source}: `eval_tasks` ({config['eval_tasks']}) must be a multiple "
                         f"of `meta_batch_size` ({config['meta_batch_size']}).")
    return config


def build_learner(config: dict[str, Any]) -> MetaLearner:
    """The recipe's MetaLearner around its zoo model (not yet compiled)."""
    if config["task"] == "sinusoid":
        net = zoo.build(config["model"], **schema.model_arguments(config))
        loss: Any = "mean_squared_error"
    elif config["task"] == "text":
        derived = {"vocabulary": shakespeare.vocabulary(), "block_size": config["window"]}
        net = zoo.build(config["model"], **schema.model_arguments(config, derived))
        loss = None  # The language model's own: the next-token log-likelihood.
    else:
        derived = {"num_classes": config["ways"]}
        net = zoo.build(config["model"], **schema.model_arguments(config, derived))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return MetaLearner(net, config["algorithm"], inner_lr=config["inner_lr"],
                       inner_steps=config["inner_steps"], loss=loss,
                       adapt_layers=config["adapt_layers"])


def _tasks(config: dict[str, Any], split: str, queries: int, seed: int, batches: int,
           first: int = 0) -> tf.data.Dataset:
    if config["task"] == "sinusoid":
        return sinusoid_tasks(config["shots"], queries, config["meta_batch_size"], seed=seed,
                              num_meta_batches=batches, first_meta_batch=first)
    if config["task"] == "text":
        streams = list(shakespeare_streams(split).values())
        return text_tasks(streams, config["shots"], queries, config["window"],
                          config["meta_batch_size"], seed=seed, num_meta_batches=batches,
                          first_meta_batch=first)
    if config["data"]:
        labeled = folder_classes(config, split)
    else:
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
        if config["task"] in ("text", "sinusoid"):
            scores = _mean_ci(np.concatenate(losses))
            metric = "nats_per_char" if config["task"] == "text" else "mse"
            results[key] = {metric: scores["mean"], "ci95": scores["ci95"],
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
        elif "nats_per_char" in value:
            parts.append(f"{key} {value['nats_per_char']:.3f} ± {value['ci95']:.3f} nats/char")
        else:
            acc = value["accuracy"]
            parts.append(f"{key} accuracy {acc['mean']:.3f} ± {acc['ci95']:.3f}")
    return ", ".join(parts)


def meta_train(recipe_dir: str, output: str | None = None,
               overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Meta-train the recipe, evaluating at ``evaluate_at`` iterations; write results.json.

    Args:
        recipe_dir: A folder with ``config.json`` (e.g. ``models/maml_sinusoid``).
        output: Output folder (default ``runs/<recipe>/<algorithm>``).
        overrides: Recipe keys to override (``--set``, the command's flags).
    """
    config = load_recipe(recipe_dir, overrides)
    output = schema.output_folder(recipe_dir, output, config["algorithm"])
    learner = build_learner(config)
    os.makedirs(output, exist_ok=True)  # the recipe and the model are checked
    metrics = ["sparse_categorical_accuracy"] if config["task"] == "episodes" else None
    learner.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                    steps_per_execution=config["steps_per_execution"], metrics=metrics)
    checkpoints = sorted({i for i in config["evaluate_at"] if i <= config["iterations"]}
                         | {config["iterations"]})
    done, report = 0, {"config": config, "evaluations": {}}
    start = time.perf_counter()
    for checkpoint in checkpoints:
        train = _tasks(config, "train", config["queries"], config["seed"], checkpoint - done,
                       first=done).prefetch(2)
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
