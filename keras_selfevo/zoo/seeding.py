"""Seeding a zoo builder's initial weights."""

from __future__ import annotations

import keras


def seeded(seed: int | None) -> None:
    """Seed Keras's random state (initial weights, layers' generators) when ``seed`` is set."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
