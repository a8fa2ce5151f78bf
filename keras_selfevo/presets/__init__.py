"""The ready-trained models shipped with the package, and where a preset is.

A preset is a folder in keras-hub's preset layout: ``config.json`` (the model's Keras
serialization), ``model.weights.h5`` (its weights) and ``metadata.json`` (what it is, the
recipe and command that made it, its card's headline figure, and the SHA-256 of the weights
file). The shipped ones live in this package's subfolders and are made by
``benchmarks/make_presets.py``; ``kse.zoo.from_preset`` loads one by name or any folder of
that layout (e.g. one downloaded from a model hub). This module reads metadata only: listing
the presets imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

SHIPPED = pathlib.Path(__file__).parent
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)


def names() -> list[str]:
    """The names of the shipped presets."""
    return sorted(folder.name for folder in SHIPPED.iterdir()
                  if (folder / METADATA_FILE).is_file())


def is_preset(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` names a shipped preset or is a folder with a preset's files."""
    text = os.fspath(name_or_path)
    return text in names() or (os.path.isdir(text)
                               and os.path.isfile(os.path.join(text, CONFIG_FILE)))


def locate(name_or_path: str | os.PathLike) -> str:
    """The folder of a preset: a shipped name, or a folder of keras-hub's preset layout.

    Raises:
        FileNotFoundError: neither (the message lists the shipped names), or a folder that
            lacks one of the preset's files (named).
    """
    text = os.fspath(name_or_path)
    if os.path.isdir(text):
        folder = text
    elif (SHIPPED / text / METADATA_FILE).is_file() and os.sep not in text and "/" not in text:
        folder = str(SHIPPED / text)
    else:
        raise FileNotFoundError(
            f"No preset {text!r}: not a shipped preset (one of {names()}; `keras-selfevo "
            "presets` lists them) nor a folder holding config.json, model.weights.h5 and "
            "metadata.json.")
    missing = [name for name in FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise FileNotFoundError(f"The preset folder {folder!r} lacks {', '.join(missing)} "
                                "(a torn copy, or not a keras-selfevo preset).")
    return folder


def metadata(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """A preset's ``metadata.json``.

    Raises:
        FileNotFoundError: see :func:`locate`.
        ValueError: the file is not JSON, or not a keras-selfevo preset's metadata.
    """
    path = os.path.join(locate(name_or_path), METADATA_FILE)
    data = read_json(path)
    if "weights_file_sha256" not in data:
        raise ValueError(f"{path!r} is not a keras-selfevo preset's metadata (it has no "
                         "weights_file_sha256 to check the weights against).")
    return data


def read_json(path: str) -> dict[str, Any]:
    """A preset file's JSON object.

    Raises:
        ValueError: the file is not JSON (a torn copy?) or holds no object.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path!r} is not valid JSON ({error}): a torn copy?") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path!r} holds no JSON object.")
    return data


def size_bytes(name_or_path: str | os.PathLike) -> int:
    """The bytes of a preset's files together."""
    folder = locate(name_or_path)
    return sum(os.path.getsize(os.path.join(folder, name)) for name in FILES)
