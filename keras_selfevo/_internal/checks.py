"""Argument checks shared by the whole package: each raises ``ValueError`` naming the argument.

Every public function and recipe loader checks its arguments with these before doing any
work, so an error message always reads the same: ``` `name` must be …, got value.```
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any


def _is_int(value: Any) -> bool:
    """Python and NumPy integers; not booleans."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value: Any, name: str, *, allow_none: bool = False) -> Any:
    """``value`` if it is an integer ≥ 1 (or ``None`` with ``allow_none``)."""
    if allow_none and value is None:
        return None
    if not _is_int(value) or value < 1:
        expected = "None or a positive integer" if allow_none else "a positive integer"
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.")
    return int(value)


def int_at_least(value: Any, name: str, minimum: int, reason: str | None = None, *,
                 allow_none: bool = False) -> Any:
    """``value`` if it is an integer ≥ ``minimum`` (or ``None`` with ``allow_none``)."""
    if allow_none and value is None:
        return None
    if not _is_int(value) or value < minimum:
        why = f" ({reason})" if reason else ""
        raise ValueError(f"`{name}` must be an integer ≥ {minimum}{why}, got {value!r}.")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    """``value`` if it is an integer ≥ 0."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"`{name}` must be an integer ≥ 0, got {value!r}.")
    return int(value)


def _bounds_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '≥'} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '≤'} {high:g}"
    return "finite"


def number(value: Any, name: str, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False, kind: str = "a number",
           allow_none: bool = False) -> Any:
    """``value`` as a float if it is a finite real number within the given bounds.

    Args:
        value: The argument.
        name: Its name, for the message.
        low: Lower bound (``None``: unbounded).
        high: Upper bound (``None``: unbounded).
        low_open: Exclude ``low`` itself.
        high_open: Exclude ``high`` itself.
        kind: How the message calls the expected value (``"a number"``, ``"a float"``).
        allow_none: Accept ``None`` (returned as is).
    """
    if allow_none and value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        expected = f"{kind} {_bounds_text(low, high, low_open, high_open)}"
        if allow_none:
            expected = f"None or {expected}"
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.")
    return float(value)


def positive_number(value: Any, name: str, *, allow_none: bool = False) -> Any:
    """``value`` as a float if it is a finite number > 0."""
    return number(value, name, 0.0, low_open=True, allow_none=allow_none)


def one_of(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")
    return value


def lookup(table: Mapping[str, Any] | Iterable[str], key: Any, name: str,
           alternatives: str = "", kind: str = "") -> Any:
    """``table[key]``, or a ``ValueError`` naming ``name`` and the known names.

    For a collection of names, ``key`` itself. The package's one "unknown name" error:
    ``Unknown [kind ]`name`=key; `name` must be one of [...]``.

    Args:
        table: Names and what they stand for, or just the names.
        key: The name given.
        name: The argument's name, for the message.
        alternatives: What else the argument accepts, e.g. ``", a RewardWeighting or a
            callable"``, appended to the list of names.
        kind: What the names are, e.g. ``"zoo model"``.
    """
    if isinstance(key, str) and key in table:
        return table[key] if isinstance(table, Mapping) else key
    prefix = f"Unknown {kind} " if kind else "Unknown "
    raise ValueError(f"{prefix}`{name}`={key!r}; `{name}` must be one of {sorted(table)}"
                     f"{alternatives}.")
