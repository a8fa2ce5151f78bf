"""Recipe files (``models/<name>/config.json``): one field-table loader for every command.

A command declares its recipe as a table of :class:`Field` (default, accepted types, a
description, and a range check from :mod:`keras_selfevo._internal.checks`). :func:`load` reads the
file over the defaults, applies the command line's overrides, and rejects unknown keys,
wrong types and values out of range, naming the key and where the value came from, before
any work is done. :func:`output_folder`, :func:`check_resume` and :func:`model_arguments`
are the steps every command shares.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

from keras_selfevo import zoo
from keras_selfevo._internal import checks as _checks
from keras_selfevo.losses import REINFORCE_LOSSES, SELF_LOSSES, LogLikelihoodReinforceLoss
from keras_selfevo.losses.reinforce_loss import NORMALIZATIONS
from keras_selfevo.recipes import catalog

NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))
OPTIONAL_INT = (int, type(None))
OPTIONAL_STR = (str, type(None))


@dataclasses.dataclass(frozen=True)
class Field:
    """One recipe key.

    Attributes:
        default: Its value when neither the file nor the command line gives one.
        kinds: Accepted types (``bool`` only where listed).
        description: What is expected (the allowed values), for the error message.
        check: ``check(value, key)`` raises ``ValueError`` for a value out of range.
        meaning: What the key does (``keras-selfevo recipes NAME`` prints it).
    """

    default: Any
    kinds: tuple[type, ...]
    description: str
    check: Callable[[Any, str], Any] | None = None
    meaning: str = ""


def explained(fields: dict[str, Field], meanings: dict[str, str]) -> dict[str, Field]:
    """``fields`` with the ``meaning`` of each key (every key must have one)."""
    missing = sorted(set(fields) - set(meanings))
    if missing:
        raise ValueError(f"recipe keys without a meaning: {missing}")
    return {key: dataclasses.replace(field, meaning=meanings[key])
            for key, field in fields.items()}


def positive_int(value: Any, key: str) -> None:
    """A range check: an integer ≥ 1 (None passes: the field's types decide on it)."""
    if value is not None:
        _checks.positive_int(value, key)


def positive_number(value: Any, key: str) -> None:
    """A range check: a finite number > 0 (None passes: the field's types decide on it)."""
    if value is not None:
        _checks.positive_number(value, key)


def non_negative_int(value: Any, key: str) -> None:
    """A range check: an integer ≥ 0."""
    _checks.non_negative_int(value, key)


def non_negative_number(value: Any, key: str) -> None:
    """A range check: a finite number ≥ 0 (None passes: the field's types decide on it)."""
    if value is not None:
        _checks.number(value, key, 0.0)


def unit_interval(value: Any, key: str) -> None:
    """A range check: a finite number in [0, 1] (None passes: the field's types decide)."""
    if value is not None:
        _checks.number(value, key, 0.0, 1.0)


def below_one(value: Any, key: str) -> None:
    """A range check: a finite number in [0, 1) (None passes: the field's types decide)."""
    if value is not None:
        _checks.number(value, key, 0.0, 1.0, high_open=True)


def share(value: Any, key: str) -> None:
    """A range check: a finite number in (0, 1] (None passes: the field's types decide)."""
    if value is not None:
        _checks.number(value, key, 0.0, 1.0, low_open=True)


def finite(value: Any, key: str) -> None:
    """A range check: a finite number (None passes: the field's types decide on it)."""
    if value is not None:
        _checks.number(value, key)


def one_of(*choices: Any) -> Callable[[Any, str], Any]:
    """A range check: one of ``choices``."""
    return lambda value, key: _checks.one_of(value, key, choices)


# The self-loss key of the commands that compile a SelfEvolvingModel; null keeps the
# model's own default (the log-likelihood for language models, else BCE).
SELF_LOSS = Field(None, OPTIONAL_STR, f"one of {SELF_LOSSES} or null (the model's default)",
                  lambda value, key: value is None or _checks.one_of(value, key, SELF_LOSSES))


# The loss keys of the commands that compile a SelfEvolvingModel.
LOSSES = {
    "self_loss": SELF_LOSS,
    "reinforce_loss": Field(None, OPTIONAL_STR, f"one of {REINFORCE_LOSSES} or null (the "
                            "model's default)", lambda value, key: value is None
                            or _checks.one_of(value, key, REINFORCE_LOSSES)),
    "reinforce_normalize": Field("sequence", (str,), f"one of {NORMALIZATIONS} (what a "
                                 "sequence's log-likelihood term is a mean over)",
                                 one_of(*NORMALIZATIONS)),
    "clip_epsilon": Field(None, OPTIONAL_NUMBER, "a positive number or null (the "
                          "log-likelihood's PPO clip range)", positive_number),
}


# The keys of a recipe that reads the user's own files (`--data PATH`).
DATA = {
    "data": Field(None, OPTIONAL_STR, "a folder of images in class subfolders, a CSV/TSV "
                  "table, a text file or folder of text files, or null"),
    "image_size": Field(None, (list, type(None)), "[height, width] or null",
                        lambda value, key: value is None or _image_size(value, key)),
    "label": Field(None, OPTIONAL_STR, "a column name or null"),
    "text": Field(None, OPTIONAL_STR, "a column name or null"),
    "validation_fraction": Field(0.1, NUMBER, "a number in (0, 1)",
                                 lambda value, key: _checks.number(value, key, 0.0, 1.0,
                                                                   low_open=True,
                                                                   high_open=True)),
    "max_vocabulary": Field(200, (int,), "an integer ≥ 8", lambda value, key:
                            _checks.int_at_least(value, key, 8)),
}
DATA_MEANINGS = {
    "data": "your own data instead of `dataset` (the command's --data PATH)",
    "image_size": "resize your images to this size (default: their own, or the most common)",
    "label": "the label column of a table or of labelled texts (default: a column named "
             "'label', else the last)",
    "text": "the text column of labelled texts (default: a column named 'text')",
    "validation_fraction": "share of your data held out for validation (stratified by class; "
                           "the last part of each text file)",
    "max_vocabulary": "the most characters a vocabulary built from your text keeps (rarer "
                      "ones become one unknown character)",
}


def _image_size(value: Any, key: str) -> None:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                       for v in value)):
        raise ValueError(f"`{key}` must be [height, width] of positive integers, got "
                         f"{value!r}.")


def loss_arguments(config: dict[str, Any], temperature: float = 1.0) -> dict[str, Any]:
    """``compile``'s ``self_loss`` (when the recipe sets one) and ``reinforce_loss``.

    ``temperature``: the one the log-likelihood scores the policy at (the sampling one).
    """
    arguments: dict[str, Any] = {}
    if config["self_loss"] is not None:
        arguments["self_loss"] = config["self_loss"]
    if config["reinforce_loss"] is not None:
        arguments["reinforce_loss"] = config["reinforce_loss"]
    if config["reinforce_loss"] == LogLikelihoodReinforceLoss.name:
        arguments["reinforce_loss"] = LogLikelihoodReinforceLoss(
            normalize=config["reinforce_normalize"], clip_epsilon=config["clip_epsilon"],
            temperature=temperature)
    return arguments


COMMANDS = ("train", "evolve", "meta-train")
COMMON = {
    "command": Field(None, OPTIONAL_STR, f"one of {COMMANDS}",
                     lambda value, key: value is None or _checks.one_of(value, key, COMMANDS)),
    "name": Field("", (str,), "a string"),
    "description": Field("", (str,), "a string"),
    "model_args": Field({}, (dict,), "an object of the zoo builder's arguments"),
    "data_dir": Field(None, OPTIONAL_STR, "a folder or null"),
    "seed": Field(0, (int,), "an integer"),
}
COMMON_MEANINGS = {
    "command": "the command that runs the recipe",
    "name": "the recipe's name (titles of plots and reports)",
    "description": "what the recipe trains, in a sentence or two",
    "model_args": "arguments of the zoo model's builder (also `--set model_args.KEY=VALUE`)",
    "data_dir": "where TFDS datasets are prepared (nothing is downloaded)",
    "seed": "seeds the initial weights, the data order and the sampling",
    "self_loss": "the self-loss: binary cross-entropy (images), the next-token "
                 "log-likelihood (language), squared error (tables); null keeps the model's",
    "reinforce_loss": "how the policy output meets a scored action: the reward-weighted "
                      "squared error, or the reward-weighted log-likelihood (the policy "
                      "gradient; with reward 1 the cross-entropy)",
    "reinforce_normalize": "for a sequence's log-likelihood: a mean per sequence, or per token "
                           "over the batch (DAPO)",
    "clip_epsilon": "PPO's clip range of the log-likelihood against the sampling policy",
}


def read_recipe(recipe: str) -> tuple[str, dict[str, Any]]:
    """The path of a recipe's ``config.json`` (a recipe name or folder) and its JSON object.

    Raises:
        FileNotFoundError: there is no such recipe.
        ValueError: the file is not a JSON object.
    """
    path = os.path.join(catalog.locate(recipe), "config.json")
    with open(path) as handle:
        try:
            config = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    return path, config


def merge_overrides(overrides: dict[str, Any] | None, **flags: Any) -> dict[str, Any]:
    """Recipe overrides (``--set key=value``) with the command's own flags on top.

    A flag that was not given (``None``) leaves the ``--set`` value, or the recipe's, alone.
    """
    return {**(overrides or {}), **{k: v for k, v in flags.items() if v is not None}}


def load(recipe_dir: str, fields: dict[str, Field], overrides: dict[str, Any] | None = None,
         command: str | None = None) -> tuple[str, dict[str, Any]]:
    """Read a recipe's ``config.json`` over the defaults of ``fields``, then ``overrides``.

    ``overrides`` keys ``model_args.KEY`` set one argument of the zoo model's builder.

    Returns:
        The file's path and the checked recipe.

    Raises:
        FileNotFoundError: no such recipe (a name or a folder with a ``config.json``).
        ValueError: invalid JSON, an unknown key, a value of the wrong type or range, a
            recipe of another command, or an unknown model argument; the message names the
            key and whether the file or the command line gave it.
    """
    path, given = read_recipe(recipe_dir)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    model_overrides = {k.split(".", 1)[1]: overrides.pop(k) for k in list(overrides)
                       if k.startswith("model_args.")}
    config = {key: field.default for key, field in fields.items()}
    config.update(given)
    config.update(overrides)
    if model_overrides and isinstance(config.get("model_args"), dict):
        config["model_args"] = {**config["model_args"], **model_overrides}
    if command and config.get("command") not in (None, command):
        raise ValueError(f"{path} is a recipe of `keras-selfevo {config['command']}`, not "
                         f"`{command}`: run keras-selfevo {config['command']} "
                         f"{recipe_dir}.")
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise ValueError(f"{path}: unknown recipe keys {unknown}; known: {sorted(fields)}.")
    for key, field in fields.items():
        value = config[key]
        source = "the command line" if key in overrides else path
        wrong_bool = isinstance(value, bool) and bool not in field.kinds
        if wrong_bool or not isinstance(value, field.kinds):
            raise ValueError(f"{source}: `{key}` must be {field.description}, got {value!r}.")
        if field.check is not None:
            try:
                field.check(value, key)
            except ValueError as error:
                raise ValueError(f"{source}: {error}") from None
    if "model" in fields and config.get("model") is not None:
        accepted = zoo.arguments(config["model"])
        for key in sorted(set(config["model_args"]) - accepted):
            source = ("the command line" if key in model_overrides or "model_args" in overrides
                      else path)
            raise ValueError(f"{source}: `model_args` {[key]} is not an argument of zoo "
                             f"model {config['model']!r}; it accepts {sorted(accepted)}.")
    return path, config


def output_folder(recipe_dir: str, output: str | None, *parts: str) -> str:
    """``output``, or ``runs/<recipe name>/<parts...>`` by default."""
    return output or os.path.join("runs", os.path.basename(os.path.normpath(recipe_dir)), *parts)


def check_resume(output: str, marker: str, resume: bool, finished: str) -> None:
    """Refuse ``--resume`` without an earlier run in ``output``, and a new run over one.

    Args:
        output: The output folder.
        marker: The folder inside ``output`` whose presence means an earlier run.
        resume: Whether ``--resume`` was given.
        finished: What the earlier run left, for the message (e.g. "interrupted run").
    """
    exists = os.path.isdir(os.path.join(output, marker))
    if resume and not exists:
        raise ValueError(f"`--resume`: '{output}' holds no {finished} to continue.")
    if not resume and exists:
        raise ValueError(f"'{output}' holds an {finished}: pass --resume to continue it, "
                         "or choose another --output.")


def model_arguments(config: dict[str, Any], derived: dict[str, Any] | None = None,
                    ) -> dict[str, Any]:
    """The zoo builder's arguments: the recipe's ``model_args``, its seed, and ``derived``.

    ``derived`` (what the data or the environment fixes: input shape, classes, vocabulary)
    fills only arguments the recipe does not set and the builder accepts (:func:`load` has
    refused unknown ``model_args`` keys).
    """
    args = dict(config["model_args"])
    accepted = zoo.arguments(config["model"])
    args.setdefault("seed", config["seed"])
    for key, value in (derived or {}).items():
        if key in accepted:
            args.setdefault(key, value)
    return args
