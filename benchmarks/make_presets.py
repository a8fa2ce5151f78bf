"""Make the presets shipped in ``keras_selfevo/presets/`` from their recipes.

For each preset (all by default) the recipe runs into ``--work/<name>`` (the command is the
recipe's, with the preset's overrides), or ``--run NAME=DIR`` names the output folder of an
earlier run of that recipe. The preset gets the command that made it (the recipe plus every
key the run changed, as ``--set``), the seed, the weights' SHA-256 (what ``keras-selfevo
train`` prints), the run's headline figure and a check figure re-measured by the tests.

    python benchmarks/make_presets.py [NAME ...] [--run NAME=DIR ...] [--work runs/presets]
        [--headline NAME=TEXT ...]

Then ``keras-selfevo presets`` lists them and ``python -m build`` ships them in the wheel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _report(run: str) -> dict:
    for file in ("history.json", "results.json"):
        path = os.path.join(run, file)
        if os.path.isfile(path):
            with open(path) as handle:
                return json.load(handle)
    raise FileNotFoundError(f"{run!r} holds no history.json or results.json.")


def _recipe_config(recipe: str, command: str) -> dict:
    from keras_selfevo.recipes import catalog, evolve, meta_train, train

    path = catalog.locate(recipe)
    return {"train": train.load_train_recipe, "evolve": evolve.load_evolve_recipe,
            "meta-train": meta_train.load_recipe}[command](path, {})


def _as_preset(value):
    """A checkpoint path given as ``pretrained`` is named by the preset of equal weights."""
    from keras_selfevo import presets
    from keras_selfevo.recipes.train import weights_digest
    from keras_selfevo.zoo import load_checkpoint

    if isinstance(value, str) and value.endswith(".keras") and os.path.isfile(value):
        digest = weights_digest(load_checkpoint(value))
        for name in presets.names():
            if presets.metadata(name).get("weights_sha256") == digest:
                return name
    return value


def command_of(recipe: str, command: str, config: dict) -> str:
    """``keras-selfevo COMMAND RECIPE`` and a ``--set`` for every key the run changed."""
    reference = _recipe_config(recipe, command)
    parts = [f"keras-selfevo {command} {recipe}"]
    for key, value in config.items():
        if key in ("data_dir", "description") or reference.get(key) == value:
            continue
        if key == "pretrained":
            value = _as_preset(value)
        shown = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"--set {key}={shown}")
    return " ".join(parts)


def headline(name: str, report: dict) -> str:
    """The run's own figure, in words."""
    if "evaluations" in report:  # meta-train
        last = report["evaluations"][max(report["evaluations"], key=int)]
        parts = []
        for key, value in last.items():
            if key.endswith("_step"):
                steps = key.split("_")[0]
                if "mse" in value and value["mse"] != value["mse"]:  # NaN
                    parts.append(f"diverges (NaN) with {steps} steps")
                elif "mse" in value:
                    parts.append(f"MSE after {steps} step(s) {value['mse']:.3f} ± "
                                 f"{value['ci95']:.3f}")
                else:
                    acc = value["accuracy"]
                    parts.append(f"accuracy after {steps} step(s) {acc['mean']:.3f} ± "
                                 f"{acc['ci95']:.3f}")
        tasks = report["config"]["eval_tasks"]
        return f"{', '.join(parts)} on {tasks} new tasks"
    if "validation_nats_per_char" in report:
        return f"validation {report['validation_nats_per_char']:.4f} nats/char (whole split)"
    if "history" in report and isinstance(report["history"], dict):
        accuracy = report["history"]["val_categorical_accuracy"][-1]
        return f"test accuracy {accuracy:.4f}"
    last = report["history"][-1]
    if "held_out_valid" in last:
        return (f"valid samples {last['valid_rate']:.3f}, held-out prompts a+b= completed "
                f"{last['held_out_valid']:.3f} (generation {last['generation']})")
    return (f"perfect pentameter lines {last['valid_rate']:.3f} of its last generation's "
            f"samples (generation {last['generation']}); benchmarks/meter_quality.py scores "
            "1,024 prompts")


def run_recipe(name: str, work: str) -> str:
    """Run the preset's recipe into ``work/name``; returns the folder."""
    from keras_selfevo.recipes import catalog, evolve, meta_train, presets, train

    spec = presets.PRESETS[name]
    path = catalog.locate(spec["recipe"])
    output = os.path.join(work, name)
    command = _recipe_command(spec["recipe"])
    if command == "train":
        train.train(path, output, overrides=dict(spec["overrides"]), verbose=2)
    elif command == "evolve":
        evolve.evolve(path, output, overrides=dict(spec["overrides"]), verbose=1)
    else:
        meta_train.meta_train(path, output, dict(spec["overrides"]))
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="presets to make (default: all)")
    parser.add_argument("--run", action="append", default=[],
                        help="NAME=DIR: make NAME from this earlier run of its recipe")
    parser.add_argument("--work", default=os.path.join(ROOT, "runs", "presets"),
                        help="where the recipes run")
    parser.add_argument("--headline", action="append", default=[],
                        help="NAME=TEXT: the headline figure in words, when a benchmark "
                        "measured it better than the run's own log (e.g. meter_quality.py)")
    args = parser.parse_args()

    import keras_selfevo  # noqa: F401
    from keras_selfevo import presets as shipped
    from keras_selfevo.recipes import presets

    runs = dict(item.split("=", 1) for item in args.run)
    headlines = dict(item.split("=", 1) for item in args.headline)
    for name in args.names or list(presets.PRESETS):
        spec = presets.PRESETS[name]
        run = runs.get(name) or run_recipe(name, args.work)
        report = _report(run)
        config = report["config"]
        command = command_of(spec["recipe"], _recipe_command(spec["recipe"]), config)
        folder = presets.make(name, run, command=command, seed=config.get("seed", 0),
                              headline=headlines.get(name) or headline(name, report))
        meta = shipped.metadata(name)
        print(f"{name}: {shipped.size_bytes(name) / 1e6:.2f} MB, {meta['headline']}; check "
              f"{meta['check']['kind']} = {meta['check']['value']:.4f}\n  {command}\n  {folder}",
              flush=True)


def _recipe_command(recipe: str) -> str:
    from keras_selfevo.recipes import catalog

    with open(os.path.join(catalog.locate(recipe), "config.json")) as handle:
        return json.load(handle)["command"]


if __name__ == "__main__":
    sys.exit(main())
