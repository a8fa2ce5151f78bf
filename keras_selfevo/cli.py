"""The ``keras-selfevo`` command line.

Bad usage exits with code 2 and a single line on stderr; so does any error the library
raises for bad input (``ValueError``, ``FileNotFoundError``). Tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from keras_selfevo.version import __version__

PROG = "keras-selfevo"
COMMANDS = ("demo", "train", "evolve", "meta-train", "adapt", "generate", "export", "recipes",
            "presets", "prepare-mnist")
# kse.distribute.STRATEGIES, repeated so that --help does not import TensorFlow.
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multiworker")



class UsageError(Exception):
    """Bad command-line usage; reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``keras-selfevo`` command."""
    parser = _Parser(
        prog=PROG,
        description="Train, meta-train, evolve and export self-improving Keras models.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_verbose_option(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = commands.add_parser(
        "demo",
        help="a short end-to-end tour on CPU that prints a report and writes PNGs",
        description="A short end-to-end tour on CPU that prints a report and writes PNGs.",
    )
    demo.add_argument("--output", default="demo_output", help="folder for PNGs and data")
    demo.add_argument(
        "--epochs", type=_positive_int, default=12, help="training epochs (default: 12)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seeds every step (default: 0)")
    meta = commands.add_parser(
        "meta-train",
        help="meta-train a MetaLearner recipe (models/<name>/config.json) and evaluate it",
        description="Meta-train a MetaLearner recipe, evaluate post-adaptation loss on fresh "
        "tasks at the recipe's checkpoints, write results.json and learner.keras.",
    )
    meta.add_argument("recipe", help="a recipe name (keras-selfevo recipes lists them), e.g. "
                      "maml_sinusoid, or a recipe folder")
    meta.add_argument("--algorithm", choices=["maml", "fomaml", "metasgd", "anil", "reptile"],
                      help="override the recipe's algorithm")
    meta.add_argument("--iterations", type=_positive_int, help="meta-iterations (override)")
    meta.add_argument("--output", help="output folder (default: runs/<recipe>/<algorithm>)")
    _add_data_option(meta, "a folder of images in class subfolders: few-shot tasks from its "
                     "classes")
    _add_set_option(meta)
    train = commands.add_parser(
        "train",
        help="train a ready model from its recipe (models/<name>/config.json)",
        description="Train a zoo model from its recipe with model.fit: progress bar, "
        "TensorBoard logs in OUTPUT/logs, OUTPUT/checkpoint.keras after every epoch, a backup "
        "for --resume in OUTPUT/backup, then OUTPUT/history.json and OUTPUT/loss_curve.png.",
    )
    train.add_argument("recipe", help="a recipe name (keras-selfevo recipes lists them), e.g. "
                       "mnist_cnn, tabular, text_classifier, shakespeare_gpt; or a recipe "
                       "folder")
    train.add_argument("--epochs", type=_positive_int, help="epochs (default: the recipe's)")
    train.add_argument(
        "--batch-size", type=_positive_int,
        help="GLOBAL batch size, split across all replicas of the strategy (default: the "
        "recipe's)",
    )
    train.add_argument(
        "--strategy", default="auto", choices=STRATEGIES,
        help="auto: multiworker with a TF_CONFIG cluster, mirrored with several GPUs, else "
        "default; mirrored: all GPUs, or all logical CPUs without one; multiworker: the "
        "TF_CONFIG cluster (default: auto)",
    )
    _add_data_option(train, "your own data: a folder of images in class subfolders (images "
                     "under unlabeled/ train the self-loss only), a CSV/TSV table (recipe "
                     "tabular; --set label=COLUMN), a UTF-8 text file or folder of .txt/.md "
                     "files (language recipes), a CSV of labelled texts (recipe "
                     "text_classifier; --set text=COLUMN --set label=COLUMN)")
    _add_run_options(train, "continue the interrupted run in --output from its last epoch")
    export = commands.add_parser(
        "export",
        help="export a .keras checkpoint as a SavedModel for TF Serving, and verify it",
        description="Write CHECKPOINT (a .keras file, loaded with safe_mode=True) as "
        "BASE_DIR/<version>/ for TF Serving, reload it in a fresh process, run every signature "
        "on a sample batch and compare with the model's predict. Prints the signatures as "
        "saved_model_cli show --all does; exits 1 when the check fails.",
    )
    export.add_argument("checkpoint", help="a .keras file, e.g. runs/mnist_cnn/checkpoint.keras, "
                        "or a preset (keras-selfevo presets)")
    export.add_argument("base_dir", help="the model's serving folder, e.g. serving/mnist_cnn")
    export.add_argument("--version", type=_positive_int,
                        help="version number (default: the next free one)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace the version if it exists")
    export.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the fresh-process check (the files are written the same)")
    adapt = commands.add_parser(
        "adapt",
        help="adapt a saved language model to your own text file in a few steps",
        description="Load MODEL (a .keras language model of the zoo, meta-learned or not, or a "
        "preset), hold back the last 10% of TEXT_FILE (UTF-8), adapt on the rest for --steps "
        "steps and print the held-back nats/char before and after (or, with --dynamic, score "
        "the whole text while adapting on what has been scored). Writes OUTPUT/model.keras and "
        "OUTPUT/adapt.json (and OUTPUT/serving/1 with --export); MODEL is only read.",
    )
    adapt.add_argument("model", help="a .keras language model, e.g. runs/shakespeare_gpt/"
                       "checkpoint.keras, or a preset, e.g. shakespeare_gpt")
    adapt.add_argument("text_file", help="your UTF-8 text file")
    adapt.add_argument("--steps", type=_positive_int,
                       help="adaptation steps (default: 100)")
    adapt.add_argument("--output", required=True, help="folder for the adapted model")
    adapt.add_argument("--learning-rate", type=float,
                       help="step size (default: a meta-learner's inner_lr, else Adam 1e-4; "
                       "with --dynamic, Adam 3e-5)")
    adapt.add_argument("--batch-size", type=_positive_int,
                       help="windows per step (default: 32)")
    adapt.add_argument("--unknown", choices=["error", "skip", "replace"], default="error",
                       help="characters outside the model's vocabulary: error (default), skip "
                       "them, or replace them with --placeholder")
    adapt.add_argument("--placeholder", default=" ",
                       help="replacement character for --unknown replace (default: space)")
    adapt.add_argument("--seed", type=int, default=0, help="seed of the training windows")
    adapt.add_argument("--dynamic", action="store_true",
                       help="dynamic evaluation instead: score the whole of TEXT_FILE window by "
                       "window, each window before one step on it, and print the static and "
                       "dynamic nats/char (--steps and --batch-size do not apply)")
    adapt.add_argument("--decay", type=float, default=0.0,
                       help="with --dynamic, pull the weights back toward the model's after "
                       "each step by this share (default: 0)")
    adapt.add_argument("--export", action="store_true",
                       help="also write a verified serving export in OUTPUT/serving")
    evolve = commands.add_parser(
        "evolve",
        help="run a self-evolution recipe (models/evolve_*/config.json)",
        description="Pretrain self-supervised, then act → reward → learn for N generations. "
        "Writes OUTPUT/history.json (per generation: mean reward, valid rate, metrics) and "
        "OUTPUT/reward_curve.png; finished generations are saved in OUTPUT/generations.",
    )
    evolve.add_argument("recipe", help="a recipe name (keras-selfevo recipes lists them), e.g. "
                        "evolve_bandit_glyphs, or a recipe folder")
    evolve.add_argument("--generations", type=_positive_int,
                        help="generations (default: the recipe's)")
    _add_data_option(evolve, "a folder of images in class subfolders: the bandit acts on them")
    _add_run_options(evolve, "continue from the last finished generation in --output")
    prepare = commands.add_parser(
        "prepare-mnist",
        help="prepare TFDS mnist from local IDX files (no network needed)",
        description="Check the four MNIST IDX files in IDX_DIR (gzipped or not) and write "
        "TFDS mnist 3.0.1 into --data-dir, so that `--set dataset=mnist --data-dir D` and "
        "tfds.load('mnist', data_dir=D) work offline.",
    )
    prepare.add_argument("idx_dir", help="folder with train-images-idx3-ubyte[.gz], "
                         "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
                         "t10k-labels-idx1-ubyte[.gz]")
    prepare.add_argument("--data-dir", help="TFDS data_dir to write (default: $TFDS_DATA_DIR "
                         "or ~/tensorflow_datasets)")
    recipes = commands.add_parser(
        "recipes",
        help="list the recipes, or every field of one with its default and meaning",
        description="Without NAME: every recipe with the command that runs it and its purpose. "
        "With NAME: every key `--set` accepts for it: the recipe's value, the default, the "
        "allowed values and what the key does.",
    )
    recipes.add_argument("name", nargs="?", help="a recipe name")
    commands.add_parser(
        "presets",
        help="list the ready-trained models shipped with the package",
        description="Every preset: its name (usable wherever a .keras checkpoint is, and in "
        "kse.zoo.from_preset), what it is, its size, its card's headline figure and the "
        "recipe that made it.",
    )
    generate = commands.add_parser(
        "generate",
        help="sample text from a saved zoo language model",
        description="Load MODEL (a .keras language model of the zoo, or a preset) and print "
        "samples that continue PROMPT.",
    )
    generate.add_argument("model", help="a .keras language model, e.g. runs/shakespeare_gpt/"
                          "checkpoint.keras, or a preset, e.g. shakespeare_gpt")
    generate.add_argument("--prompt", default="", help="the text to continue (default: none)")
    generate.add_argument("--length", type=_positive_int, default=200,
                          help="characters to sample (default: 200)")
    generate.add_argument("--temperature", type=_non_negative_float, default=0.8,
                          help="sampling temperature, 0 for greedy (default: 0.8)")
    generate.add_argument("--top-k", type=_positive_int, help="sample among the K most likely "
                          "characters")
    generate.add_argument("--top-p", type=_probability, help="nucleus sampling mass in (0, 1]")
    generate.add_argument("--seed", type=int, default=0, help="seed of the samples")
    generate.add_argument("--num-samples", type=_positive_int, default=1,
                          help="samples to draw (default: 1)")
    for command in commands.choices.values():
        _add_verbose_option(command)
        # How the command spells each argument of the functions it calls (see _as_flags).
        command.set_defaults(flags={
            action.dest: (max(action.option_strings, key=len),
                          action.const if action.nargs == 0 else None)
            for action in command._actions  # noqa: SLF001
            if action.option_strings and action.dest not in ("help", "verbose")})
    return parser


def _add_run_options(parser: argparse.ArgumentParser, resume_help: str) -> None:
    """``--data-dir``, ``--output``, ``--resume`` and ``--set`` of a recipe-running command."""
    parser.add_argument("--data-dir", help="where datasets are prepared (TFDS data_dir)")
    parser.add_argument("--output", help="output folder (default: runs/<recipe>)")
    parser.add_argument("--resume", action="store_true", help=resume_help)
    _add_set_option(parser)


def _add_data_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--data", metavar="PATH", help=what)


def _add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], type=_key_value,
        metavar="KEY=VALUE",
        help="override a recipe key (keras-selfevo recipes NAME lists them) or a model "
        "argument (model_args.KEY=VALUE); VALUE is read as JSON (numbers, true, lists) or "
        "text",
    )


def _add_verbose_option(parser: argparse.ArgumentParser) -> None:
    # Read from sys.argv before TensorFlow is imported (keras_selfevo._internal.quiet);
    # declared here so that --help lists it and the parser accepts it.
    parser.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="show TensorFlow's log lines, TFDS progress bars and every warning",
    )


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _list_recipes() -> int:
    """``keras-selfevo recipes``: one line a recipe (no TensorFlow needed)."""
    from keras_selfevo.recipes import catalog

    rows = [catalog.summary(name) for name in catalog.names()]
    width = max(len(row["name"]) for row in rows)
    print(f"{'recipe':<{width}}  {'command':<10}  purpose")
    for row in rows:
        print(f"{row['name']:<{width}}  {row['command']:<10}  {row['purpose']}")
    print(f"\nRun one: {PROG} <command> <recipe> [--data PATH] [--set KEY=VALUE]; its keys: "
          f"{PROG} recipes <recipe>")
    return 0


def _list_presets() -> int:
    """``keras-selfevo presets``: one line a preset (no TensorFlow needed)."""
    from keras_selfevo import presets

    rows = []
    for name in presets.names():
        meta = presets.metadata(name)
        size = presets.size_bytes(name)
        shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"
        rows.append((name, shown, meta.get("recipe", ""),
                     meta.get("description", ""), meta.get("headline", "")))
    width = max((len(row[0]) for row in rows), default=6)
    for name, size, recipe, description, headline in rows:
        print(f"{name:<{width}}  {size:>7}  recipe {recipe}\n{'':<{width}}  {description}"
              f"\n{'':<{width}}  {headline}")
    print(f"\nUse one wherever a .keras checkpoint goes ({PROG} generate shakespeare_gpt "
          "--prompt ROMEO:) or in Python: kse.zoo.from_preset(NAME).")
    return 0


def _describe_recipe(name: str) -> int:
    """``keras-selfevo recipes NAME``: every key, its value here, default, values, meaning."""
    from keras_selfevo.recipes import catalog, evolve, meta_train, schema, train

    path, config = schema.read_recipe(name)
    fields = {"train": train.FIELDS, "evolve": evolve.FIELDS,
              "meta-train": meta_train.FIELDS}[config.get("command") or "train"]
    print(f"{name} ({catalog.summary(name)['command']}): {config.get('description', '')}\n")
    print(f"Keys of {path} (set any with --set KEY=VALUE):")
    for key, field in fields.items():
        value = config.get(key, field.default)
        shown = json.dumps(value, ensure_ascii=False)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        default = "" if value == field.default else f" (default {json.dumps(field.default)})"
        print(f"  {key} = {shown}{default}\n      {field.meaning}; {field.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from keras_selfevo.demo import run_demo

        run_demo(args.output, epochs=args.epochs, seed=args.seed)
        return 0
    if args.command == "meta-train":
        from keras_selfevo.recipes.meta_train import meta_train
        from keras_selfevo.recipes.schema import merge_overrides

        meta_train(args.recipe, args.output, merge_overrides(
            dict(args.overrides), algorithm=args.algorithm, iterations=args.iterations,
            data=args.data))
        return 0
    if args.command == "recipes":
        return _describe_recipe(args.name)
    if args.command == "generate":
        from keras_selfevo.zoo.generation import generate_from_file

        for sample in generate_from_file(args.model, args.prompt, args.length,
                                         temperature=args.temperature, top_k=args.top_k,
                                         top_p=args.top_p, seed=args.seed,
                                         num_samples=args.num_samples):
            print(sample)
        return 0
    if args.command == "train":
        from keras_selfevo.recipes.schema import merge_overrides
        from keras_selfevo.recipes.train import train

        result = train(args.recipe, args.output, epochs=args.epochs, batch_size=args.batch_size,
                       strategy=args.strategy, data_dir=args.data_dir, resume=args.resume,
                       overrides=merge_overrides(dict(args.overrides), data=args.data))
        if result["initial_epoch"]:
            print(f"[train] resumed at epoch {result['initial_epoch']}")
        summary = result["summary"]
        figures = [f"{summary['train_seconds']:.1f} s of training"]
        if "train_chars_per_second" in summary:
            figures.append(f"{summary['train_chars_per_second']:,.0f} train chars/s")
        if "validation_nats_per_char" in summary:
            figures.append(f"validation {summary['validation_nats_per_char']:.4f} nats/char")
        if "validation_accuracy" in summary:
            figures.append(f"held-out accuracy {summary['validation_accuracy']:.4f}")
        if "validation_r2" in summary:
            figures.append(f"held-out R² {summary['validation_r2']:.4f}")
        print(f"[train] {', '.join(figures)}")
        if "sample" in summary:
            print(f"[train] sample:\n{summary['sample']}")
        print(f"[train] weights sha256 {result['weights_sha256']}")
        if result["history"] is not None:
            print(f"[train] wrote {result['output']}: checkpoint.keras, history.json, "
                  "loss_curve.png, logs/")
        return 0
    if args.command == "evolve":
        from keras_selfevo.recipes.evolve import comparison, evolve
        from keras_selfevo.recipes.schema import merge_overrides

        report = evolve(args.recipe, args.output, generations=args.generations,
                        data_dir=args.data_dir, resume=args.resume,
                        overrides=merge_overrides(dict(args.overrides), data=args.data))
        print(comparison(report))
        return 0
    if args.command == "adapt":
        from keras_selfevo.recipes.adapt import adapt_file

        report = adapt_file(args.model, args.text_file, args.output, args.steps,
                            learning_rate=args.learning_rate, batch_size=args.batch_size,
                            unknown=args.unknown, placeholder=args.placeholder,
                            seed=args.seed, dynamic=args.dynamic, decay=args.decay,
                            export=args.export)
        if report["unknown_characters"]:
            done = {"skip": "skipped", "replace": "replaced"}[report["unknown_policy"]]
            print(f"[adapt] {done} characters outside the vocabulary: "
                  f"{report['unknown_characters']!r}")
        if args.dynamic:
            print(f"[adapt] dynamic evaluation of {report['held_out_chars']:,} characters, one "
                  f"step after each of {report['steps']} windows, in {report['seconds']:.1f} s: "
                  f"static {report['before_nats_per_char']:.4f}, dynamic "
                  f"{report['after_nats_per_char']:.4f} nats/char")
        else:
            print(f"[adapt] {report['steps']} steps on {report['train_chars']:,} characters in "
                  f"{report['seconds']:.1f} s; held-back {report['held_out_chars']:,} "
                  f"characters: {report['before_nats_per_char']:.4f} -> "
                  f"{report['after_nats_per_char']:.4f} nats/char")
        if "export" in report:
            print(report["export"])
        print(f"[adapt] wrote {args.output}: model.keras, adapt.json"
              + (", serving/" if args.export else ""))
        return 0 if report.get("export_ok", True) else 1
    if args.command == "prepare-mnist":
        from keras_selfevo.data.loading import default_data_dir
        from keras_selfevo.data.mnist_files import prepare_mnist

        path = prepare_mnist(args.idx_dir, args.data_dir or default_data_dir())
        print(f"[prepare-mnist] mnist is ready in {path}; train on it with "
              f"--set dataset=mnist --data-dir {args.data_dir or default_data_dir()}")
        return 0
    if args.command == "export":
        from keras_selfevo.export import export_for_serving
        from keras_selfevo.zoo import load_checkpoint

        model = load_checkpoint(args.checkpoint)
        report = export_for_serving(model, args.base_dir, args.version,
                                    overwrite=args.overwrite, verify=args.verify)
        print(report)
        return 0 if report.ok else 1
    raise UsageError(f"command '{args.command}' is not available in {PROG} {__version__}")


# A keyword argument as the library spells it in a message: `name='value'`, name=value
# (not a recipe key after --set, not an attribute or a flag).
_KEYWORD = re.compile(r"(?<![\w.\-])(?<!--set )`?([a-z_]+)`?=('[^']*'|\"[^\"]*\"|[\w.+\-]+)")


def _as_flags(message: str, flags: dict[str, tuple[str, Any]]) -> str:
    """An error's Python spellings of the command's arguments in the command's own.

    The library names keyword arguments as Python does (``unknown='skip'``,
    ``overwrite=True``); under the command line the user passes ``--unknown skip`` and
    ``--overwrite``. ``flags`` maps each argument to its flag and, for a switch, the value it
    sets.
    """

    def spelled(match: re.Match) -> str:
        name, value = match.groups()
        if name not in flags:
            return match.group(0)
        flag, switch = flags[name]
        if switch is not None:
            return flag if value == str(switch) else match.group(0)
        if len(value) > 2 and value[0] in "'\"" and re.fullmatch(r"[\w.+\-/]+", value[1:-1]):
            value = value[1:-1]
        return f"{flag} {value}"

    return _KEYWORD.sub(spelled, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            choices = ", ".join(COMMANDS)
            raise UsageError(f"a command is required ({choices}); see '{PROG} --help'")
        if args.command == "recipes" and args.name is None:
            return _list_recipes()
        if args.command == "presets":
            return _list_presets()
        import keras_selfevo  # after parsing: TensorFlow loads for the commands that need it

        keras_selfevo.import_all()
        return _run(args)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as error:
        message = _as_flags(" ".join(str(error).split()), getattr(args, "flags", {}))
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        from keras_selfevo.training.non_finite import NonFiniteWeightsError

        if not isinstance(error, NonFiniteWeightsError):
            raise
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
