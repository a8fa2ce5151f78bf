"""Reading ``models/<name>/config.json`` recipe files."""

from __future__ import annotations

import json
import os
from typing import Any


def read_recipe(recipe_dir: str) -> tuple[str, dict[str, Any]]:
    """The path of ``recipe_dir/config.json`` and its JSON object.

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: the file is not a JSON object.
    """
    path = os.path.join(recipe_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No recipe at '{recipe_dir}': expected a file {path}.")
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
