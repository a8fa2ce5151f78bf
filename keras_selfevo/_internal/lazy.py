"""Heavy optional-at-start-up modules, imported when first used.

``tensorflow_probability`` and ``keras_hub`` add about 1.2 s to every start of the package
(the CLI, a fresh-process check, a notebook kernel) while most commands never touch them.
``from keras_selfevo._internal.lazy import tfp`` gives an object whose attributes are the module's,
imported on the first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name`` and imports it on first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"


tfp = LazyModule("tensorflow_probability")
keras_hub = LazyModule("keras_hub")
