"""Generator of the ``selfevo_text`` Dyck strings (the builder enumerates arithmetic lines)."""

from __future__ import annotations

import numpy as np

DYCK_VOCABULARY = "()[]"
ARITHMETIC_VOCABULARY = "0123456789+="
_PAIRS = {"(": ")", "[": "]"}


def dyck_string(rng: np.random.Generator, max_length: int = 24, max_depth: int = 4) -> str:
    """A random non-empty well-formed string over two bracket kinds, depth ≤ ``max_depth``.

    The length is even and uniform in ``[2, max_length]``; every prefix is opened no deeper
    than ``max_depth``.
    """
    length = 2 * int(rng.integers(1, max_length // 2 + 1))
    stack: list[str] = []
    out = []
    for position in range(length):
        remaining = length - position
        must_close = len(stack) == remaining or len(stack) == max_depth
        if stack and (must_close or rng.uniform() < 0.5):
            out.append(_PAIRS[stack.pop()])
        else:
            opener = "([" [int(rng.integers(2))]
            stack.append(opener)
            out.append(opener)
    return "".join(out)

