"""Self-evolution recipes: ``models/evolve_*/config.json`` → pretrain, evolve, report.

The recipe names an environment (``bandit``: learn classes of images from reward alone;
``generation``: a language model writes strings a checker scores). The environment says what
the model needs (classes, input shape, vocabulary), what to pretrain on self-supervised
(``alpha=1``: unlabeled images or the corpus), whether a supervised baseline applies (the
bandit's: the same observations with the true label as the action), and what to report
after the loop (the generator's samples).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import keras

from keras_selfevo import presets, zoo
from keras_selfevo._internal.plotting import save_curves
from keras_selfevo.data import shakespeare
from keras_selfevo.data.image_folder import read_image_folder
from keras_selfevo.data.text_builder import vocabulary_of
from keras_selfevo.evolve.environments import (
    BanditClassification,
    Environment,
    MeterEnvironment,
    VerifiableGeneration,
)
from keras_selfevo.evolve.loop import KEEP, LoopGeometry, SelfEvolution
from keras_selfevo.evolve.rewards import CHECKERS
from keras_selfevo.losses import (
    WEIGHTINGS,
    FilterWeighting,
    LogLikelihoodReinforceLoss,
    get_reward_weighting,
)
from keras_selfevo.recipes import data, schema
from keras_selfevo.recipes.schema import Field
from keras_selfevo.training import CosineAlpha
from keras_selfevo.zoo import load_checkpoint


def _bandit(config: dict[str, Any]) -> Environment:
    if config["data"]:
        own = read_image_folder(config["data"], image_size=config["image_size"],
                                validation_fraction=config["validation_fraction"],
                                seed=config["seed"])
        labeled = own.train["label"] >= 0  # images under unlabeled/ are never rewarded
        arrays = [own.train["x"][labeled], own.train["label"][labeled], own.validation["x"],
                  own.validation["label"]]
    else:
        arrays = data.labeled_arrays(config["dataset"], config["data_dir"])
    rewarded = (None if config["rewarded_fraction"] == 1.0 else
                data.labeled_subset(arrays[1], config["rewarded_fraction"], config["seed"]))
    return BanditClassification(*arrays, rewarded=rewarded,
                                unrewarded_fraction=config["unrewarded_fraction"])


def _generation(config: dict[str, Any]) -> Environment:
    corpus = data.texts(config["dataset"], "train", config["data_dir"])
    held_out = (data.texts(config["dataset"], "test", config["data_dir"])[
        :config["held_out_prompts"]] if config["checker"] == "arithmetic" else None)
    return VerifiableGeneration(vocabulary_of(config["dataset"]), config["checker"],
                                config["length"], corpus, config["corpus_fraction"], held_out,
                                prompted=config["prompted"])


def _meter(config: dict[str, Any]) -> Environment:
    return MeterEnvironment(data.corpus_ids(config, "train"),
                            data.corpus_ids(config, "validation"), shakespeare.vocabulary(),
                            prompt_length=config["prompt_length"], length=config["length"],
                            corpus_fraction=config["corpus_fraction"],
                            pretrain_steps=config["pretrain_steps"], novelty=config["novelty"])


# Environment name → its constructor from a recipe.
ENVIRONMENTS: dict[str, Callable[[dict[str, Any]], Environment]] = {
    "bandit": _bandit, "generation": _generation, "meter": _meter}

# The zoo models with a policy this command evolves.
MODELS = ("char_rnn", "gpt", "hub_gpt2", "mnist_cnn")
_INT, _NUM = "a positive integer", "a positive number"
FIELDS: dict[str, Field] = {
    **schema.COMMON,
    "environment": Field("bandit", (str,), f"one of {tuple(ENVIRONMENTS)}",
                         schema.one_of(*ENVIRONMENTS)),
    "model": Field("mnist_cnn", (str,), f"one of {MODELS}", schema.one_of(*MODELS)),
    "dataset": Field("selfevo_glyphs/classify10", (str,), "a TFDS name"),
    "data": schema.DATA["data"], "image_size": schema.DATA["image_size"],
    "validation_fraction": schema.DATA["validation_fraction"],
    "rewarded_fraction": Field(1.0, schema.NUMBER, "a number in (0, 1] (the bandit: the share "
                               "of training images ever rewarded, stratified by class; all are "
                               "pretrained on)", schema.share),
    "unrewarded_fraction": Field(0.0, schema.NUMBER, "a number in [0, 1) (the bandit with "
                                 "`rewarded_fraction` < 1: the share of each generation's "
                                 "training rows that are never-rewarded images, self-loss "
                                 "only)", schema.below_one),
    "pretrain_epochs": Field(1, (int,), "an integer ≥ 0",
                             schema.non_negative_int),
    "pretrain_steps": Field(500, (int,), "a positive integer (steps per pretraining epoch "
                            "on a text stream: the meter environment)", schema.positive_int),
    "pretrained": Field(None, schema.OPTIONAL_STR, "a .keras checkpoint or a preset "
                        "(keras-selfevo presets) to start from (skips pretraining), or null"),
    "prompt_length": Field(16, (int,), "a positive integer (meter prompts, in characters)",
                           schema.positive_int),
    "generations": Field(10, (int,), _INT, schema.positive_int),
    "samples_per_generation": Field(1000, (int,), _INT, schema.positive_int),
    "samples_per_observation": Field(1, (int,), _INT, schema.positive_int),
    "epochs_per_generation": Field(1, (int,), _INT, schema.positive_int),
    "batch_size": Field(64, (int,), _INT, schema.positive_int),
    "learning_rate": Field(1e-3, schema.NUMBER, _NUM, schema.positive_number),
    "evolve_learning_rate": Field(None, schema.OPTIONAL_NUMBER, "a positive number or null",
                                  schema.positive_number),
    "evolve_min_learning_rate": Field(None, schema.OPTIONAL_NUMBER, "a number ≥ 0 or null "
                                      "(the loop's rate follows a cosine down to it over the "
                                      "loop's steps; needs keep='all')",
                                      schema.non_negative_number),
    "alpha": Field(0.3, schema.NUMBER, "a number in [0, 1]", schema.unit_interval),
    "alpha_end": Field(None, schema.OPTIONAL_NUMBER, "a number in [0, 1] or null (alpha "
                       "follows a cosine from `alpha` to it over the loop's steps; needs "
                       "keep='all')", schema.unit_interval),
    "reward_weighting": Field("raw", (str,), f"one of {tuple(WEIGHTINGS)}",
                              schema.one_of(*WEIGHTINGS)),
    "kl_beta": Field(0.0, schema.NUMBER, "a number ≥ 0 (weight of KL(policy || the "
                     "loop's starting policy))", schema.non_negative_number),
    "reward_threshold": Field(None, schema.OPTIONAL_NUMBER, "a number or null", schema.finite),
    "temperature": Field(1.0, schema.NUMBER, "a number ≥ 0",
                         schema.non_negative_number),
    "score_at_temperature": Field(False, (bool,), "true or false (needs reinforce_loss "
                                  "'log_likelihood' and a temperature > 0)"),
    "epsilon": Field(0.0, schema.NUMBER, "a number in [0, 1]", schema.unit_interval),
    "keep": Field("all", (str,), f"one of {KEEP}", schema.one_of(*KEEP)),
    "top_fraction": Field(0.5, schema.NUMBER, "a number in (0, 1]",
                          schema.share),
    "min_reward": Field(1.0, schema.NUMBER, "a number", schema.finite),
    "restart": Field("continue", (str,), "'continue' or 'base'",
                     schema.one_of("continue", "base")),
    "replay": Field(0, (int,), "an integer ≥ 0",
                    schema.non_negative_int),
    "length": Field(12, (int,), _INT, schema.positive_int),
    "checker": Field("arithmetic", (str,), f"one of {CHECKERS}", schema.one_of(*CHECKERS)),
    "held_out_prompts": Field(500, (int,), "an integer ≥ 0 (test lines whose prompts a+b= "
                              "are scored each generation)", schema.non_negative_int),
    "corpus_fraction": Field(0.0, schema.NUMBER, "a number in [0, 1]", schema.unit_interval),
    "prompted": Field(False, (bool,), "true or false"),
    "novelty": Field(0.0, schema.NUMBER, "a number in [0, 1]", schema.unit_interval),
    "baseline": Field(True, (bool,), "true or false"),
    **schema.LOSSES,
    "jit_compile": Field(False, (bool,), "true or false (compile the train steps with XLA)"),
}
FIELDS = schema.explained(FIELDS, {
    **schema.COMMON_MEANINGS, **schema.DATA_MEANINGS,
    "environment": "what the model acts in: a bandit over labelled images, verifiable "
                   "generation (sums, brackets) or verse scored for meter",
    "model": "the zoo model that acts",
    "dataset": "the dataset the environment reads (a TFDS name)",
    "rewarded_fraction": "the bandit: the share of training images ever rewarded",
    "unrewarded_fraction": "the bandit: the share of each generation's rows that are "
                           "never-rewarded images (self-loss only)",
    "pretrain_epochs": "epochs of self-supervised pretraining before the loop",
    "pretrain_steps": "steps per pretraining epoch on a text stream",
    "pretrained": "start from this checkpoint or preset instead of pretraining",
    "prompt_length": "characters of each meter prompt",
    "generations": "rounds of act, reward, learn",
    "samples_per_generation": "observations (prompts, images) per generation",
    "samples_per_observation": "actions sampled per observation (a GRPO group)",
    "epochs_per_generation": "fit epochs on a generation's rows",
    "batch_size": "fit batch size (a multiple of the group with group-relative weighting)",
    "learning_rate": "the pretraining step size (and the loop's without "
                     "`evolve_learning_rate`)",
    "evolve_learning_rate": "the loop's step size",
    "evolve_min_learning_rate": "the loop's step size at its last step (a cosine from the "
                                "loop's rate)",
    "alpha": "weight of the self-loss in the loop",
    "alpha_end": "alpha at the loop's last step (a cosine from `alpha`)",
    "reward_weighting": "how a reward becomes a weight w(r)",
    "kl_beta": "weight of KL(policy || the loop's starting policy)",
    "reward_threshold": "with 'filter': the reward kept (instead of the batch median)",
    "temperature": "sampling temperature of the actions",
    "score_at_temperature": "the log-likelihood scores the sampled actions at `temperature`, "
                            "softmax(logits / T): the gradient of the policy the loop samples "
                            "from (as TRL's GRPO); false: at 1, the model's output as is",
    "epsilon": "the bandit: probability of a uniformly random action",
    "keep": "which samples a generation trains on",
    "top_fraction": "with keep 'top_fraction': the share kept",
    "min_reward": "with keep 'min_reward': the lowest reward kept",
    "restart": "'continue' learning, or start every generation from the first weights",
    "replay": "earlier generations trained on again",
    "length": "characters a generation environment writes",
    "checker": "the verifier of generated strings",
    "held_out_prompts": "test lines whose prompts a+b= are scored each generation",
    "corpus_fraction": "share of the rows that are corpus text (self-loss)",
    "prompted": "arithmetic: complete the prompts a+b= of training lines (a GRPO group is "
                "several completions of one prompt) instead of writing whole lines",
    "novelty": "meter: weight of the discount of a line's reward by the share of its word "
               "4-grams repeated among the generation's lines",
    "baseline": "also run the supervised twin of the bandit, to compare",
    "jit_compile": "compile the train steps with XLA",
})
# Weightings under which the bandit's reward-0 rows (wrong guesses, unrewarded images) weigh 0.
ZERO_REWARD_NEUTRAL = ("raw", "normalized", "grpo", "rloo")
# The loop's settings besides its geometry (LoopGeometry's fields).
_LOOP_KEYS = ("temperature", "epsilon", "top_fraction", "min_reward", "restart", "seed")


def loop_geometry(config: dict[str, Any]) -> LoopGeometry:
    """The recipe's :class:`~keras_selfevo.evolve.loop.LoopGeometry`."""
    return LoopGeometry(**{field.name: config[field.name]
                           for field in dataclasses.fields(LoopGeometry)})


def load_evolve_recipe(recipe_dir: str,
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check an evolution recipe over the defaults (the loop's grouping too)."""
    config = schema.load(recipe_dir, FIELDS, overrides, "evolve")[1]
    pretrained = config["pretrained"]
    if pretrained and not os.path.isfile(pretrained) and not presets.is_preset(pretrained):
        raise FileNotFoundError(f"`pretrained`: no checkpoint or preset {pretrained!r} (one "
                                f"of {presets.names()}, a .keras file, or a preset folder).")
    if config["rewarded_fraction"] != 1.0 and config["environment"] != "bandit":
        raise ValueError(f"`rewarded_fraction` applies to the bandit environment, not "
                         f"{config['environment']!r}.")
    if config["novelty"] and config["environment"] != "meter":
        raise ValueError(f"`novelty` applies to the meter environment, not "
                         f"{config['environment']!r}.")
    if config["unrewarded_fraction"] > 0:
        if config["environment"] != "bandit" or config["rewarded_fraction"] == 1.0:
            raise ValueError("`unrewarded_fraction` needs the bandit environment with "
                             "`rewarded_fraction` < 1 (images that are never rewarded).")
        if config["reward_weighting"] not in ZERO_REWARD_NEUTRAL:
            raise ValueError(f"`unrewarded_fraction` needs a `reward_weighting` that gives "
                             f"reward-0 rows no weight, one of {ZERO_REWARD_NEUTRAL}; got "
                             f"{config['reward_weighting']!r}.")
    if config["score_at_temperature"] and (
            config["reinforce_loss"] != LogLikelihoodReinforceLoss.name
            or config["temperature"] <= 0):
        raise ValueError(f"`score_at_temperature` needs reinforce_loss "
                         f"'{LogLikelihoodReinforceLoss.name}' and a `temperature` > 0, got "
                         f"{config['reinforce_loss']!r} at {config['temperature']}.")
    for key in ("alpha_end", "evolve_min_learning_rate"):
        if config[key] is not None and config["keep"] != "all":
            raise ValueError(f"`{key}` needs keep='all' (the loop's length in steps is known "
                             f"only then), got keep={config['keep']!r}.")
    if (config["evolve_min_learning_rate"] is not None
            and config["evolve_min_learning_rate"] > _loop_rate(config)):
        raise ValueError(f"`evolve_min_learning_rate` ({config['evolve_min_learning_rate']}) "
                         f"must be at most the loop's rate ({_loop_rate(config)}).")
    loop_geometry(config).group_size(get_reward_weighting(config["reward_weighting"]))
    return config


def _loop_rate(config: dict[str, Any]) -> float:
    """The loop's step size: ``evolve_learning_rate``, else ``learning_rate``."""
    rate = config["evolve_learning_rate"]
    return float(config["learning_rate"] if rate is None else rate)


def _loop_steps(config: dict[str, Any], environment: Environment) -> int:
    """The ``fit`` steps of the recipe's loop (known with keep='all')."""
    steps = loop_geometry(config).planned_steps(
        environment, config["generations"], get_reward_weighting(config["reward_weighting"]))
    return max(1, steps or 0)


def _loop_alpha(config: dict[str, Any], environment: Environment) -> Any:
    """The loop's alpha: ``alpha``, or a cosine from it to ``alpha_end`` over the loop."""
    if config["alpha_end"] is None:
        return float(config["alpha"])
    return CosineAlpha(float(config["alpha"]), float(config["alpha_end"]),
                       _loop_steps(config, environment))


def compiled_model(config: dict[str, Any], environment: Environment,
                   alpha: Any) -> keras.Model:
    """The recipe's model (its ``pretrained`` checkpoint, or a new zoo model), compiled.

    ``alpha`` is the loop's (see :func:`recompile`).
    """
    if config["pretrained"]:
        model = load_checkpoint(config["pretrained"])
        try:
            environment.check_model(model)
        except ValueError as error:
            raise ValueError(f"`pretrained` ({config['pretrained']}): {error}") from None
    else:
        model = zoo.build(config["model"],
                          **schema.model_arguments(config, environment.model_arguments()))
    recompile(model, config, alpha, environment=environment)
    return model


def recompile(model: keras.Model, config: dict[str, Any], alpha: Any,
              pretraining: bool = False, environment: Environment | None = None) -> None:
    """Compile for pretraining (``learning_rate``) or for the loop.

    The loop uses ``evolve_learning_rate`` when the recipe sets it, else ``learning_rate``;
    with ``evolve_min_learning_rate`` the rate follows a cosine down to it over the loop's
    steps, which ``environment`` (the loop's) fixes. A model with a ``"mask"`` output scores
    its self-loss on the masked elements only.
    """
    rate: Any = config["learning_rate"]
    if not pretraining:
        rate = _loop_rate(config)
        if config["evolve_min_learning_rate"] is not None:
            if environment is None:
                raise ValueError("`evolve_min_learning_rate` needs the loop's environment "
                                 "(its length in steps).")
            rate = keras.optimizers.schedules.CosineDecay(
                rate, _loop_steps(config, environment),
                alpha=config["evolve_min_learning_rate"] / rate)
    weighting: Any = config["reward_weighting"]
    if weighting == "filter" and config["reward_threshold"] is not None:
        weighting = FilterWeighting(threshold=float(config["reward_threshold"]))
    tempered = config["score_at_temperature"] and not pretraining
    model.compile(**schema.loss_arguments(config, config["temperature"] if tempered else 1.0),
                  optimizer=keras.optimizers.Adam(rate),
                  alpha=alpha, reward_weighting=weighting,
                  masked_self_loss=model.has_mask_output,
                  kl_beta=0.0 if pretraining else config["kl_beta"],
                  jit_compile=config["jit_compile"])


def _pretrain(model: keras.Model, config: dict[str, Any], environment: Environment) -> None:
    """Self-supervised only (alpha 1) on what the environment offers to pretrain on."""
    fit_arguments = environment.pretraining_data(config["batch_size"], config["seed"])
    if config["pretrain_epochs"] <= 0 or not fit_arguments:
        return
    recompile(model, config, 1.0, pretraining=True)
    model.fit(**fit_arguments, epochs=config["pretrain_epochs"], verbose=0)
    recompile(model, config, _loop_alpha(config, environment), environment=environment)


def _loop(model, environment: Environment, config: dict[str, Any],
          checkpoint_dir: str | None) -> SelfEvolution:
    geometry = dataclasses.asdict(loop_geometry(config))
    return SelfEvolution(model, environment, checkpoint_dir=checkpoint_dir, **geometry,
                         **{key: config[key] for key in _LOOP_KEYS})


# What a generation's line shows, in this order, of what its row has.
SHOWN = (("mean_reward", "reward"), ("valid_rate", "valid"), ("accuracy", "held-out accuracy"),
         ("held_out_valid", "held-out prompts completed"),
         ("held_out_sampled", "sampled at 0.8"), ("distinct", "distinct"),
         ("validation_nats_per_char", "validation nats/char"))


def _figures(row: dict[str, Any]) -> list[tuple[str, float]]:
    return [(label, row[key]) for key, label in SHOWN if key in row]


class GenerationLines(keras.callbacks.Callback):
    """Prints one line per finished generation.

    The line holds the generation's figures (reward, valid rate, accuracy or completed
    prompts, diversity) and the supervised baseline's accuracy at the same generation when
    one ran.
    """

    def __init__(self, generations: int, baseline: list[dict[str, Any]] | None = None):
        super().__init__()
        self.generations = generations
        self.baseline = {row["generation"]: row for row in baseline or []}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """``epoch`` is the generation just finished; ``logs`` its history row."""
        row = logs or {}
        shown = ", ".join(f"{label} {value:.3f}" for label, value in _figures(row))
        twin = self.baseline.get(epoch, {})
        if "accuracy" in twin:
            shown += f" (supervised {twin['accuracy']:.3f})"
        width = len(str(self.generations))
        print(f"[evolve] generation {epoch:>{width}}/{self.generations}: {shown}", flush=True)


def comparison(report: dict[str, Any]) -> str:
    """The run in one line: first → last generation of each figure, and the baseline's."""
    history = report["history"]
    first, last = history[0], history[-1]
    changes = [f"{label} {first[key]:.3f} -> {last[key]:.3f}" if key in first
               else f"{label} {last[key]:.3f}" for key, label in SHOWN if key in last]
    line = (f"[evolve] generation {first['generation']} -> {last['generation']}: "
            + ", ".join(changes))
    baseline = report.get("baseline_history")
    if baseline and "accuracy" in baseline[-1] and "accuracy" in last:
        gap = last["accuracy"] - baseline[-1]["accuracy"]
        line += (f"; the supervised baseline (true labels, same network and budget) "
                 f"{baseline[-1]['accuracy']:.3f}, a gap of {gap:+.3f}")
    return line


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
        verbose: Print a line per generation (:class:`GenerationLines`).
    """
    config = load_evolve_recipe(recipe_dir, schema.merge_overrides(
        overrides, generations=generations, data_dir=data_dir))
    output = schema.output_folder(recipe_dir, output)
    checkpoints = os.path.join(output, "generations")
    if resume and not os.path.isdir(os.path.join(checkpoints, "last")):
        raise ValueError(f"`--resume`: '{output}' holds no finished generation to continue.")
    if not resume:
        schema.check_resume(output, "generations", False, "earlier run")
    keras.utils.set_random_seed(config["seed"])
    environment = ENVIRONMENTS[config["environment"]](config)
    start = time.perf_counter()
    if config["pretrained"] and presets.is_preset(config["pretrained"]):
        print(f"[evolve] starting from the preset {config['pretrained']}: "
              f"{presets.metadata(config['pretrained']).get('description', '')}", flush=True)
    model = compiled_model(config, environment, _loop_alpha(config, environment))
    os.makedirs(output, exist_ok=True)  # every input is checked and the model built
    report: dict[str, Any] = {"config": config}
    # The supervised twin runs before the loop, so each generation's line can show it beside.
    baseline_env = environment.supervised_baseline() if config["baseline"] else None
    if baseline_env is not None:
        keras.utils.set_random_seed(config["seed"])
        # Every baseline reward is 1: "raw" weighting makes it plain supervised learning
        # (batch-statistics weightings would see no spread and weight nothing).
        supervised = {**config, "reward_weighting": "raw"}
        baseline = compiled_model(supervised, baseline_env, _loop_alpha(supervised,
                                                                          baseline_env))
        _pretrain(baseline, supervised, baseline_env)
        report["baseline_history"] = _loop(baseline, baseline_env, supervised, None).run(
            config["generations"], verbose=0)
    if not resume and not config["pretrained"]:
        _pretrain(model, config, environment)
    before = environment.final_report(model, config["temperature"], config["seed"])
    lines = ([GenerationLines(config["generations"], report.get("baseline_history"))]
             if verbose else [])
    history = _loop(model, environment, config, checkpoints).run(
        config["generations"], callbacks=lines, verbose=0)
    report.update(history=history, seconds=time.perf_counter() - start)
    if before:
        report["before"] = before
    report.update(environment.final_report(model, config["temperature"], config["seed"]))
    model.save(os.path.join(output, "model.keras"))  # generate, export, adapt read it
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
