"""Self-evolution recipes: ``models/evolve_*/config.json`` → pretrain, evolve, report.

``bandit`` recipes pretrain the image model self-supervised (``alpha=1``, no labels), then
learn classes from reward alone; a supervised baseline with the same observations, epochs,
alpha and optimizer (the true label as action, reward 1, ``raw`` weighting) is run beside
it. ``generation``
recipes pretrain a :class:`~keras_selfevo.zoo.CharRNN` on the unlabeled corpus, then
evolve it on its own samples scored by a checker.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import keras
import numpy as np

from keras_selfevo.data import text
from keras_selfevo.data.loading import load
from keras_selfevo.data.text_builder import vocabulary_of
from keras_selfevo.evolve.environments import BanditClassification, VerifiableGeneration
from keras_selfevo.evolve.loop import KEEP, SelfEvolution
from keras_selfevo.losses import FilterWeighting
from keras_selfevo.plotting import save_curves
from keras_selfevo.recipe_files import merge_overrides, read_recipe
from keras_selfevo.zoo.registry import build

DEFAULTS: dict[str, Any] = {
    "name": "", "description": "", "environment": "bandit", "model": "mnist_cnn",
    "model_args": {}, "dataset": "selfevo_glyphs/classify10", "data_dir": None,
    "pretrain_epochs": 1, "generations": 10, "samples_per_generation": 1000,
    "samples_per_observation": 1, "epochs_per_generation": 1, "batch_size": 64,
    "learning_rate": 1e-3, "evolve_learning_rate": None, "alpha": 0.3,
    "reward_weighting": "raw", "reward_threshold": None,
    "temperature": 1.0,
    "epsilon": 0.0, "keep": "all", "top_fraction": 0.5, "min_reward": 1.0,
    "restart": "continue", "replay": 0,
    "length": 12, "checker": "arithmetic", "corpus_fraction": 0.0, "baseline": True,
    "seed": 0,
}
_TYPES = {key: (type(value),) if value is not None else (str, type(None))
          for key, value in DEFAULTS.items()}
_TYPES.update({"learning_rate": (int, float), "alpha": (int, float), "temperature": (int, float),
               "epsilon": (int, float), "top_fraction": (int, float), "min_reward": (int, float),
               "corpus_fraction": (int, float), "reward_threshold": (int, float, type(None)),
               "evolve_learning_rate": (int, float, type(None))})


def load_evolve_recipe(recipe_dir: str, **overrides: Any) -> dict[str, Any]:
    """Read and check an evolution recipe over the defaults."""
    path, given = read_recipe(recipe_dir)
    config = {**DEFAULTS, **given, **{k: v for k, v in overrides.items() if v is not None}}
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{path}: unknown recipe keys {unknown}; known: {sorted(DEFAULTS)}.")
    for key, kinds in _TYPES.items():
        value = config[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise ValueError(f"{path}: `{key}` must be of type "
                             f"{'/'.join(k.__name__ for k in kinds)}, got {value!r}.")
    if config["environment"] not in ("bandit", "generation"):
        raise ValueError(f"{path}: `environment` must be 'bandit' or 'generation'.")
    if config["keep"] not in KEEP:
        raise ValueError(f"{path}: `keep` must be one of {KEEP}.")
    if config["generations"] < 1:
        raise ValueError(f"{path}: `generations` must be a positive integer.")
    return config


class _SupervisedBandit(BanditClassification):
    """The baseline: the same observations, but the action is the label (reward 1)."""

    def act(self, model, observations, temperature, epsilon, seed):
        return observations.inputs, observations.hidden


def _bandit(config: dict[str, Any]) -> tuple[BanditClassification, np.ndarray]:
    train = load(config["dataset"], split="train", data_dir=config["data_dir"], batch_size=-1)
    test = load(config["dataset"], split="test", data_dir=config["data_dir"], batch_size=-1)
    arrays = [np.asarray(a) for a in (train["image"], train["label"], test["image"],
                                      test["label"])]
    return BanditClassification(*arrays), arrays[0]


def _compiled_model(config: dict[str, Any], environment, alpha: float) -> keras.Model:
    args = dict(config["model_args"])
    args.setdefault("seed", config["seed"])
    if config["environment"] == "bandit":
        args.setdefault("num_classes", environment.num_classes)
        args.setdefault("input_shape", environment.images.shape[1:])
    else:
        args.setdefault("vocabulary", environment.vocabulary)
    model = build(config["model"], **args)
    _recompile(model, config, alpha)
    return model


def _recompile(model: keras.Model, config: dict[str, Any], alpha: float,
               pretraining: bool = False) -> None:
    """Compile for pretraining (``learning_rate``) or for the loop.

    The loop uses ``evolve_learning_rate`` when the recipe sets it, else ``learning_rate``.
    """
    rate = config["learning_rate"]
    if not pretraining and config["evolve_learning_rate"] is not None:
        rate = config["evolve_learning_rate"]
    kwargs = {"masked_self_loss": True} if config["model"] == "mnist_cnn" else {}
    weighting: Any = config["reward_weighting"]
    if weighting == "filter" and config["reward_threshold"] is not None:
        weighting = FilterWeighting(threshold=float(config["reward_threshold"]))
    model.compile(optimizer=keras.optimizers.Adam(rate), alpha=alpha,
                  reward_weighting=weighting, **kwargs)


def _pretrain(model: keras.Model, config: dict[str, Any], environment, images) -> None:
    """Self-supervised only: reconstruct unlabeled images, or model the unlabeled corpus."""
    if config["pretrain_epochs"] <= 0:
        return
    _recompile(model, config, 1.0, pretraining=True)
    if config["environment"] == "bandit":
        x = environment.images
        model.fit(x, {"self": x}, batch_size=config["batch_size"],
                  epochs=config["pretrain_epochs"], verbose=0)
    else:
        data = text.language_model_dataset(environment.corpus, environment.vocabulary,
                                           config["length"] + 1)
        model.fit(data.shuffle(len(environment.corpus), seed=config["seed"])
                  .batch(config["batch_size"]), epochs=config["pretrain_epochs"], verbose=0)
    _recompile(model, config, float(config["alpha"]))


def _loop(model, environment, config: dict[str, Any], checkpoint_dir: str | None):
    keys = ("samples_per_generation", "samples_per_observation", "epochs_per_generation",
            "batch_size", "temperature", "epsilon", "keep", "top_fraction", "min_reward",
            "restart", "replay",
            "seed")
    return SelfEvolution(model, environment, checkpoint_dir=checkpoint_dir,
                         **{key: config[key] for key in keys})


def evolve(recipe_dir: str, output: str | None = None, *, generations: int | None = None,
           data_dir: str | None = None, resume: bool = False,
           overrides: dict[str, Any] | None = None, verbose: int = 1) -> dict[str, Any]:
    """Run an evolution recipe; write ``history.json`` and ``reward_curve.png``.

    Args:
        recipe_dir: A folder with ``config.json`` (e.g. ``models/evolve_bandit_glyphs``).
        output: Output folder (default ``runs/<recipe>``).
        generations: Override the recipe's generations.
        data_dir: Where datasets are prepared.
        resume: Continue from the last finished generation saved in ``output``.
        overrides: Other recipe keys.
        verbose: Show a progress bar of generations.
    """
    config = load_evolve_recipe(recipe_dir, **merge_overrides(
        overrides, generations=generations, data_dir=data_dir))
    output = output or os.path.join("runs", os.path.basename(os.path.normpath(recipe_dir)))
    checkpoints = os.path.join(output, "generations")
    if resume and not os.path.isdir(os.path.join(checkpoints, "last")):
        raise ValueError(f"`--resume`: '{output}' holds no finished generation to continue.")
    if not resume and os.path.isdir(checkpoints):
        raise ValueError(f"'{output}' holds an earlier run: pass --resume to continue it, or "
                         "choose another --output.")
    keras.utils.set_random_seed(config["seed"])
    if config["environment"] == "bandit":
        environment, images = _bandit(config)
    else:
        corpus_ds = load(config["dataset"], split="train", data_dir=config["data_dir"])
        corpus = [t.decode() for t in corpus_ds.map(lambda e: e["text"]).as_numpy_iterator()]
        environment = VerifiableGeneration(vocabulary_of(config["dataset"]), config["checker"],
                                           config["length"], corpus, config["corpus_fraction"])
        images = None
    os.makedirs(output, exist_ok=True)
    start = time.perf_counter()
    model = _compiled_model(config, environment, float(config["alpha"]))
    if not resume:
        _pretrain(model, config, environment, images)
    history = _loop(model, environment, config, checkpoints).run(config["generations"],
                                                                 verbose=verbose)
    report: dict[str, Any] = {"config": config, "history": history,
                              "seconds": time.perf_counter() - start}
    if config["environment"] == "generation":
        samples = model.generate([""] * 20, config["length"] + 1, config["temperature"],
                                 seed=config["seed"])
        report["samples"] = samples
    if config["environment"] == "bandit" and config["baseline"]:
        keras.utils.set_random_seed(config["seed"])
        baseline_env = _SupervisedBandit(environment.images, environment.labels,
                                         environment.test_images, environment.test_labels,
                                         environment.num_classes)
        # Every baseline reward is 1: "raw" weighting makes it plain supervised learning
        # (batch-statistics weightings would see no spread and weight nothing).
        supervised = {**config, "reward_weighting": "raw"}
        baseline = _compiled_model(supervised, baseline_env, float(config["alpha"]))
        _pretrain(baseline, supervised, baseline_env, images)
        report["baseline_history"] = _loop(baseline, baseline_env, supervised, None).run(
            config["generations"], verbose=0)
    with open(os.path.join(output, "history.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    curves = {"mean_reward": [row["mean_reward"] for row in history],
              "valid_rate": [row["valid_rate"] for row in history]}
    if "accuracy" in history[0]:
        curves["accuracy (held out)"] = [row["accuracy"] for row in history]
    if "baseline_history" in report:
        curves["supervised baseline accuracy"] = [r["accuracy"] for r in
                                                  report["baseline_history"]]
    save_curves(curves, list(curves), os.path.join(output, "reward_curve.png"),
                f"{config['name'] or 'self-evolution'}: per generation",
                xlabel="generation (1 = before any update)")
    return report
