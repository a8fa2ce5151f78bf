"""Turning a ``compile`` argument (an object, its saved config or a callable) into an object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


def as_instance(identifier: Any, kind: type, wrap: Callable[[Callable], Any]) -> Any | None:
    """``identifier`` as an instance of ``kind``, or None when it names something else.

    An instance is returned as is; a saved config (a dict from ``.keras`` files) is
    deserialized; a plain callable is wrapped by ``wrap``. Anything else (a name) gives None,
    for the caller to look up.
    """
    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, kind):
        return identifier
    if callable(identifier) and not isinstance(identifier, (str, type)):
        return wrap(identifier)
    return None
