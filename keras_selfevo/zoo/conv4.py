"""conv4: the MAML few-shot network."""

from __future__ import annotations

import keras

from keras_selfevo._internal import checks as _checks
from keras_selfevo.layers import ConvBlock
from keras_selfevo.zoo.seeding import seeded

DOWNSAMPLES = ("pool", "stride")


def conv4(num_classes: int = 5, input_shape: tuple[int, ...] = (28, 28, 1), filters: int = 64,
          normalization: str | None = "batch", downsample: str = "pool",
          seed: int | None = None) -> keras.Model:
    """The MAML few-shot network: 4 × ConvBlock(filters) → features → Dense(num_classes) logits.

    Args:
        num_classes: Ways of the task (logits).
        input_shape: Image shape.
        filters: Channels of every block.
        normalization: ``"batch"`` or ``None`` (see :class:`~keras_selfevo.layers.ConvBlock`).
        downsample: ``"pool"``: each block ends with 2×2 max pooling and the last map is
            flattened (MAML's MiniImageNet form). ``"stride"``: stride-2 convolutions and a
            mean over the last map (MAML's and learn2learn's Omniglot form; on 28×28 inputs
            about 3.7× fewer multiply-adds).
        seed: Seeds the initial weights.
    """
    _checks.one_of(downsample, "downsample", DOWNSAMPLES)
    seeded(seed)
    strided = downsample == "stride"
    blocks = [ConvBlock(filters, normalization=normalization, pool=not strided,
                        strides=2 if strided else 1, name=f"block{i}") for i in range(4)]
    features = (keras.layers.GlobalAveragePooling2D(name="mean") if strided
                else keras.layers.Flatten(name="flatten"))
    return keras.Sequential(
        [keras.Input(tuple(input_shape), name="image"), *blocks, features,
         keras.layers.Dense(num_classes, name="logits")],
        name="conv4",
    )


# What the model reads from your own files (`keras-selfevo ... --data PATH`).
conv4.data_kind = "images"
