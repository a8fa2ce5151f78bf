"""sinusoid_mlp: the MAML regression network."""

from __future__ import annotations

import keras

from keras_selfevo.zoo.seeding import seeded


def sinusoid_mlp(hidden: tuple[int, ...] = (40, 40), seed: int | None = None) -> keras.Model:
    """The MAML regression network: 1 → hidden (ReLU) → 1; default 1-40-40-1."""
    seeded(seed)
    return keras.Sequential(
        [keras.Input((1,), name="x")]
        + [keras.layers.Dense(units, activation="relu", name=f"dense{i}")
           for i, units in enumerate(hidden)]
        + [keras.layers.Dense(1, name="y")],
        name="sinusoid_mlp",
    )
