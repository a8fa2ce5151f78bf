"""Where recipes are: a recipe is called by name or by the path of its folder.

The recipes live in ``models/<name>/config.json`` in the repository; the package's build
copies them into ``keras_selfevo/recipes/shipped/`` (see ``setup.py``), so an installed
package finds them by name from any folder. In a source checkout (an editable install) the
repository's ``models/`` is read directly.
"""

from __future__ import annotations

import json
import os
import pathlib

_SHIPPED = pathlib.Path(__file__).parent / "shipped"
_REPOSITORY = pathlib.Path(__file__).parents[2] / "models"


def _roots() -> list[pathlib.Path]:
    return [root for root in (_SHIPPED, _REPOSITORY) if root.is_dir()]


def names() -> list[str]:
    """The recipes the package knows by name."""
    found = {folder.name for root in _roots() for folder in root.iterdir()
             if (folder / "config.json").is_file()}
    return sorted(found)


def locate(recipe: str) -> str:
    """The folder of ``recipe``: a folder with a ``config.json``, or a recipe's name.

    Raises:
        FileNotFoundError: neither (the message lists the names).
    """
    recipe = os.fspath(recipe)
    if os.path.isfile(os.path.join(recipe, "config.json")):
        return recipe
    if os.sep not in recipe and "/" not in recipe:
        for root in _roots():
            if (root / recipe / "config.json").is_file():
                return str(root / recipe)
    raise FileNotFoundError(
        f"No recipe at '{recipe}': not a folder with a config.json, nor a recipe name "
        f"(one of {names()}; `keras-selfevo recipes` lists them).")


def summary(name: str) -> dict[str, str]:
    """A recipe's name, command and the first sentence of its description."""
    with open(os.path.join(locate(name), "config.json")) as handle:
        config = json.load(handle)
    description = config.get("description", "")
    first = description.split(". ")[0].rstrip(".") + "." if description else ""
    return {"name": name, "command": config.get("command", ""), "purpose": first}
