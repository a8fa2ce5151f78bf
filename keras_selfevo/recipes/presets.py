"""The shipped presets: which recipe makes each, and the figure a test re-measures.

``benchmarks/make_presets.py`` runs the recipes (or reads the output folders of earlier runs
of them) and calls :func:`make`, which writes ``keras_selfevo/presets/<name>`` with the
recipe, the command, the seed, the recipe's weights SHA-256, the headline figure of the run
and a ``check``: a figure measured on a fixed slice of the preset's own data, which
:func:`measure` measures again (the test suite does, for every shipped preset).
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import numpy as np

from keras_selfevo import presets
from keras_selfevo.zoo import load_checkpoint
from keras_selfevo.zoo.presets import save_preset

# A language model's check: validation nats/char of the first 20,000 characters.
NATS_PER_CHAR = {"kind": "nats_per_char", "split": "validation", "characters": 20000,
                 "window": 64, "tolerance": 1e-3}

# name -> the recipe that makes it, the overrides of its run, what it is, and its check.
PRESETS: dict[str, dict[str, Any]] = {
    "shakespeare_gpt": {
        "recipe": "shakespeare_gpt", "overrides": {},
        "description": "a 4-layer, 4-head, 128-wide character GPT trained on 32 Shakespeare "
                       "plays with nanoGPT's CPU recipe",
        "check": NATS_PER_CHAR},
    "shakespeare_gpt_large": {
        "recipe": "shakespeare_gpt_large", "overrides": {},
        "description": "a 6-layer, 4-head, 128-wide character GPT trained on 32 Shakespeare "
                       "plays for 6,400 steps (about 14 minutes of training on a 2-core CPU)",
        "check": NATS_PER_CHAR},
    "shakespeare_char_rnn": {
        "recipe": "shakespeare_char_rnn", "overrides": {},
        "description": "a GRU-256 character model of 32 Shakespeare plays",
        "check": NATS_PER_CHAR},
    "shakespeare_poet": {
        "recipe": "evolve_meter", "overrides": {},
        "description": "shakespeare_gpt evolved to write iambic pentameter: rewarded by a "
                       "scansion checker (CMU Pronouncing Dictionary) for lines worded anew, "
                       "anchored by a KL term",
        "check": {"kind": "meter", "prompts": 128, "temperature": 0.6, "seed": 12345,
                  "tolerance": 0.03}},
    "arithmetic_gru": {
        "recipe": "evolve_arithmetic", "overrides": {},
        "description": "a GRU-256 character model that writes correct sums a+b=c, pretrained "
                       "on sums and evolved on its own checked samples",
        "check": {"kind": "arithmetic", "lines": 300, "tolerance": 0.01}},
    "maml_sinusoid": {
        "recipe": "maml_sinusoid", "overrides": {"algorithm": "maml"},
        "description": "a 40-40 MLP meta-learned with second-order MAML on the MAML paper's "
                       "sine tasks (K=10); adapt it to 10 points of a new sine",
        "check": {"kind": "meta", "tasks": 100, "steps": 10, "tolerance": 1e-3}},
    "metasgd_sinusoid": {
        "recipe": "maml_sinusoid", "overrides": {"algorithm": "metasgd"},
        "description": "the same MLP meta-learned with Meta-SGD (learned per-weight inner "
                       "rates, for the one inner step it was meta-trained with)",
        "check": {"kind": "meta", "tasks": 100, "steps": 1, "tolerance": 1e-3}},
    "maml_glyphs": {
        "recipe": "maml_glyphs", "overrides": {},
        "description": "conv4 meta-learned with MAML for 5-way 1-shot classification of "
                       "selfevo_glyphs (handwriting-like glyphs of alphabets it never saw)",
        "check": {"kind": "meta", "tasks": 48, "steps": 1, "tolerance": 0.02}},
    "digits_cnn": {
        "recipe": "mnist_cnn", "overrides": {"dataset": "selfevo_digits",
                                             "validation_split": "test"},
        "description": "mnist_cnn trained on scikit-learn's real handwritten digits (28x28, "
                       "grey)",
        "check": {"kind": "accuracy", "dataset": "selfevo_digits", "split": "test",
                  "tolerance": 1e-6}},
}


def _shakespeare_ids(split: str) -> np.ndarray:
    from keras_selfevo.data import language_data

    return np.concatenate(list(language_data.shakespeare_streams(split).values()))


def measure(model: keras.Model, check: dict[str, Any], recipe: str,
            data_dir: str | None = None) -> float:
    """The figure ``check`` describes, measured on ``model``.

    Kinds: ``nats_per_char`` (the first ``characters`` of a Shakespeare split), ``accuracy``
    (a dataset split), ``meter`` (share of perfect pentameter lines written for ``prompts``
    fixed prompts), ``arithmetic`` (share of the first ``lines`` held-out prompts ``a+b=``
    completed correctly, greedy), ``meta`` (the recipe's post-adaptation MSE, or accuracy,
    on ``tasks`` fixed tasks after ``steps`` inner steps).
    """
    from keras_selfevo.recipes import catalog

    kind = check["kind"]
    if kind == "nats_per_char":
        ids = _shakespeare_ids(check["split"])[:check["characters"]]
        return float(model.nats_per_char(ids, check["window"]))
    if kind == "accuracy":
        from keras_selfevo.data import load

        split = load(check["dataset"], split=check["split"], data_dir=data_dir, batch_size=-1)
        images = split["image"].numpy().astype("float32") / 255.0
        out = model.predict(images, batch_size=256, verbose=0)
        scores = out["policy"] if isinstance(out, dict) else out
        return float(np.mean(np.argmax(scores, -1) == split["label"].numpy()))
    if kind == "meter":
        from keras_selfevo.data import shakespeare
        from keras_selfevo.evolve import MeterEnvironment, meter

        environment = MeterEnvironment(_shakespeare_ids("train"), _shakespeare_ids("validation"),
                                       shakespeare.vocabulary())
        observations = environment.observe(check["prompts"], check["seed"])
        _, actions = environment.act(model, observations, check["temperature"], 0.0,
                                     check["seed"])
        rewards = [meter.meter_reward(line) for line in environment.lines(actions)]
        return float(np.mean(np.asarray(rewards) >= 1.0))
    if kind == "arithmetic":
        from keras_selfevo.recipes import evolve

        config = evolve.load_evolve_recipe(catalog.locate(recipe), {"data_dir": data_dir})
        environment = evolve.ENVIRONMENTS[config["environment"]](config)
        return float(environment.completion_rate(model, environment.held_out[:check["lines"]]))
    if kind == "meta":
        from keras_selfevo.recipes import meta_train

        config = meta_train.load_recipe(catalog.locate(recipe), {
            "algorithm": model.algorithm, "eval_tasks": check["tasks"],
            "eval_steps": [check["steps"]], "data_dir": data_dir})
        scores = meta_train.evaluate_post_adaptation(model, config)[f"{check['steps']}_step"]
        return float(scores["mse"] if "mse" in scores else scores["accuracy"]["mean"])
    raise ValueError(f"`check`: unknown kind {kind!r}.")


def model_of_run(name: str, run: str) -> keras.Model:
    """The trained model in ``run``, an output folder of the preset's recipe.

    ``checkpoint.keras`` (train), ``model.keras`` (evolve) or ``learner.keras`` (meta-train);
    an evolve run of an earlier version holds only ``generations/last/model.weights.h5``,
    loaded into the recipe's model as the run's own config builds it.
    """
    for file in ("checkpoint.keras", "model.keras", "learner.keras"):
        if os.path.isfile(os.path.join(run, file)):
            return load_checkpoint(os.path.join(run, file))
    weights = os.path.join(run, "generations", "last", "model.weights.h5")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{run!r} holds no model of the {PRESETS[name]['recipe']} "
                                "recipe (checkpoint.keras, model.keras, learner.keras or "
                                "generations/last/model.weights.h5).")
    from keras_selfevo.recipes import evolve

    with open(os.path.join(run, "history.json")) as handle:
        config = json.load(handle)["config"]
    environment = evolve.ENVIRONMENTS[config["environment"]](config)
    model = evolve.compiled_model(config, environment, config["alpha"])
    model.optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    return model


def make(name: str, run: str, *, command: str, seed: int, headline: str,
         data_dir: str | None = None, folder: str | None = None) -> str:
    """Write the preset ``name`` from ``run`` (an output folder of its recipe).

    Its ``weights_sha256`` is what the recipe's run prints (equal digests, bit-identical
    weights). Returns the preset's folder (default: the package's ``presets/<name>``).
    """
    from keras_selfevo.recipes.train import weights_digest

    spec = PRESETS[name]
    model = model_of_run(name, run)
    check = dict(spec["check"])
    check["value"] = measure(model, check, spec["recipe"], data_dir)
    return save_preset(model, folder or str(presets.SHIPPED / name),
                       description=spec["description"], recipe=spec["recipe"],
                       command=command, seed=seed, weights_sha256=weights_digest(model),
                       headline=headline, check=check)
