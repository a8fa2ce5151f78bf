"""Recipes: what ``keras-selfevo train | meta-train | evolve`` run, by name or folder.

One module per command (:mod:`.train`, :mod:`.meta_train`, :mod:`.evolve`, each with a function
of the same name); each reads its recipe with the one field-table loader of :mod:`.schema`
and the datasets with :mod:`.data`, then builds, trains and reports. :mod:`.catalog` finds
the recipes (it imports nothing heavy: the command lists them without TensorFlow).
"""

import importlib

__all__ = ["catalog", "data", "evolve", "meta_train", "schema", "train"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"keras_selfevo.recipes.{name}")
    raise AttributeError(f"module 'keras_selfevo.recipes' has no attribute {name!r}")
