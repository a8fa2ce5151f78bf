"""Folder moves that never leave a half-written result in place."""

from __future__ import annotations

import os
import shutil
import tempfile


def move_into_place(staging: str, final: str) -> None:
    """Rename the finished folder ``staging`` to ``final`` (same file system).

    An existing ``final`` is first renamed aside, then deleted once the new one is in
    place, so ``final`` is always either the old complete folder or the new one.
    """
    if not os.path.exists(final):
        os.rename(staging, final)
        return
    aside = tempfile.mkdtemp(prefix=".replaced-", dir=os.path.dirname(final) or ".")
    os.rename(final, os.path.join(aside, "old"))
    os.rename(staging, final)
    shutil.rmtree(aside, ignore_errors=True)
