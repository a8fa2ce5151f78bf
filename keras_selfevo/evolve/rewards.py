"""Verifiable rewards for generated strings: well-formed Dyck strings and correct sums.

Each checker returns a reward in [0, 1]: 1 for a valid string, partial credit for strings
that are partly right, 0 for garbage. ``is_*`` functions give the strict verdict used for
valid-sample rates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_CLOSERS = {")": "(", "]": "["}
_OPENERS = set(_CLOSERS.values())
_SUM = re.compile(r"^(\d{1,3})\+(\d{1,3})=(\d{1,4})$")


def is_dyck(text: str) -> bool:
    """A non-empty string over ``()[]`` whose brackets all match and close."""
    return bool(text) and _valid_prefix_length(text) == len(text) and _depth_after(text) == 0


def _valid_prefix_length(text: str) -> int:
    stack: list[str] = []
    for position, char in enumerate(text):
        if char in _OPENERS:
            stack.append(char)
        elif char in _CLOSERS and stack and stack[-1] == _CLOSERS[char]:
            stack.pop()
        else:
            return position
    return len(text)


def _depth_after(text: str) -> int:
    depth = 0
    for char in text:
        depth += 1 if char in _OPENERS else -1
    return depth


def dyck_reward(text: str) -> float:
    """1 for a well-formed Dyck string; else half the fraction of it that is a valid prefix.

    A string that is a valid prefix but leaves brackets open scores
    ``0.5 * (1 - open / len)``; one that breaks at position ``p`` scores ``0.5 * p / len``.
    The empty string scores 0.
    """
    if not text:
        return 0.0
    if is_dyck(text):
        return 1.0
    prefix = _valid_prefix_length(text)
    if prefix == len(text):  # only unclosed brackets
        return 0.5 * (1.0 - _depth_after(text) / len(text))
    return 0.5 * prefix / len(text)


def is_correct_sum(text: str) -> bool:
    """A line ``a+b=c`` with the right ``c``."""
    match = _SUM.match(text)
    return bool(match) and int(match[1]) + int(match[2]) == int(match[3])


def arithmetic_reward(text: str) -> float:
    """Reward of one arithmetic line, with partial credit.

    1 for a correct ``a+b=c``; for a well-formed wrong one, 0.3 + 0.7 × the fraction of the
    right-aligned digits of ``c`` that match the true sum; 0 when not of the form ``a+b=c``.
    """
    match = _SUM.match(text)
    if not match:
        return 0.0
    truth, answer = str(int(match[1]) + int(match[2])), match[3]
    if answer == truth:
        return 1.0
    width = max(len(truth), len(answer))
    agree = sum(a == b for a, b in zip(truth.rjust(width), answer.rjust(width)))
    return 0.3 + 0.7 * agree / width


CHECKERS = ("arithmetic", "dyck")


def score(texts: Sequence[str], reward: str) -> np.ndarray:
    """Rewards of many strings by checker name (``"dyck"`` or ``"arithmetic"``), float32."""
    checkers = {"dyck": dyck_reward, "arithmetic": arithmetic_reward}
    if reward not in checkers:
        raise ValueError(f"`reward` must be one of {sorted(checkers)}, got {reward!r}.")
    return np.asarray([checkers[reward](t) for t in texts], np.float32)
