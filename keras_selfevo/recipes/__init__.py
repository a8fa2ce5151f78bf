"""Recipes: what ``keras-selfevo train | meta-train | evolve`` run from ``models/<name>/``.

One module per command (:mod:`.train`, :mod:`.meta_train`, :mod:`.evolve`, each with a function
of the same name); each reads its recipe with the one field-table loader of :mod:`.schema`
and the datasets with :mod:`.data`, then builds, trains and reports.
"""

from keras_selfevo.recipes import data, evolve, meta_train, schema, train

__all__ = ["data", "evolve", "meta_train", "schema", "train"]
