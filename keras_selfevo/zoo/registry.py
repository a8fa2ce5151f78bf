"""The zoo's registry: a model name → its builder, and the builders' keyword arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras

from keras_selfevo._internal import checks as _checks
from keras_selfevo.zoo.char_rnn import char_rnn
from keras_selfevo.zoo.conv4 import conv4
from keras_selfevo.zoo.gpt import gpt
from keras_selfevo.zoo.hub_language_model import hub_gpt2
from keras_selfevo.zoo.mnist_cnn import mnist_cnn
from keras_selfevo.zoo.sinusoid_mlp import sinusoid_mlp
from keras_selfevo.zoo.tabular import tabular
from keras_selfevo.zoo.text_classifier import text_classifier

BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "char_rnn": char_rnn,
    "conv4": conv4,
    "gpt": gpt,
    "hub_gpt2": hub_gpt2,
    "mnist_cnn": mnist_cnn,
    "sinusoid_mlp": sinusoid_mlp,
    "tabular": tabular,
    "text_classifier": text_classifier,
}


def names() -> list[str]:
    """The names :func:`build` accepts."""
    return sorted(BUILDERS)


def arguments(name: str) -> set[str]:
    """The keyword arguments the builder of ``name`` accepts."""
    builder = _checks.lookup(BUILDERS, name, "name", kind="zoo model")
    return set(inspect.signature(builder).parameters)


def data_kind(name: str) -> str | None:
    """What the model ``name`` reads from the user's own files (None: datasets only).

    ``"images"``, ``"table"``, ``"text"`` or ``"labelled_texts"``; each model's file declares
    it, beside its builder.
    """
    builder = _checks.lookup(BUILDERS, name, "name", kind="zoo model")
    return getattr(builder, "data_kind", None)


def build(name: str, **overrides: Any) -> keras.Model:
    """Build a ready model by name, with keyword overrides of its defaults.

    Args:
        name: One of :func:`names`.
        **overrides: Arguments of the model's builder (see its docstring), e.g.
            ``num_classes=5``.

    Raises:
        ValueError: an unknown name or argument.
    """
    accepted = arguments(name)
    unknown = set(overrides) - accepted
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {sorted(unknown)} for zoo model {name!r}; it accepts "
            f"{sorted(accepted)}."
        )
    return BUILDERS[name](**overrides)
