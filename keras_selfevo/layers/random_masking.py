"""RandomMasking: training-time corruption for masked / denoising reconstruction."""

from __future__ import annotations

from typing import Any

import keras

from keras_selfevo._internal import checks as _checks
from keras_selfevo.layers.seed_state import SavesSeedState


@keras.saving.register_keras_serializable(package="keras_selfevo")
class RandomMasking(SavesSeedState, keras.layers.Layer):
    """Replace a random fraction of the input elements by ``mask_value`` during training.

    Returns ``(corrupted, mask)``: ``mask`` is 1.0 where an element was replaced and 0.0
    elsewhere, so a self-loss can count masked elements only
    (``SelfEvolvingModel.compile(masked_self_loss=True)`` with the mask as the model's
    ``"mask"`` output). Outside training the input passes unchanged with an all-zero mask.

    Args:
        rate: Probability of masking each element, in [0, 1).
        mask_value: The value written into masked elements.
        seed: Seed of the layer's random generator.
        **kwargs: Base layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, rate: float = 0.25, mask_value: float = 0.0, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        _checks.number(rate, "rate", 0.0, 1.0, high_open=True, kind="a float")
        self.rate = float(rate)
        self.mask_value = float(mask_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def call(self, inputs, training: bool | None = None):
        if training and self.rate > 0:
            noise = keras.random.uniform(keras.ops.shape(inputs), seed=self.seed_generator)
            mask = keras.ops.cast(noise < self.rate, inputs.dtype)
        else:
            mask = keras.ops.zeros_like(inputs)
        corrupted = inputs * (1 - mask) + keras.ops.cast(self.mask_value, inputs.dtype) * mask
        return corrupted, mask

    def compute_output_shape(self, input_shape):
        return input_shape, input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rate": self.rate,
            "mask_value": self.mask_value,
            "seed": self.seed,
        }
