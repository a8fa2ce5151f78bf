"""ConvBlock: Conv → BatchNorm → ReLU → MaxPool (or a strided conv), the few-shot backbone block."""

from __future__ import annotations

from typing import Any

import keras

from keras_selfevo._internal import checks as _checks
from keras_selfevo.layers.fused_batch_norm import FusedBatchNormalization

NORMALIZATIONS = ("batch", None)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class ConvBlock(keras.layers.Layer):
    """A 2D convolution, optional batch normalization, ReLU and 2×2 max pooling.

    Four of these with 64 filters make the MAML few-shot network (``kse.zoo.build("conv4")``):
    with max pooling (``pool=True``, the default) as MAML used on MiniImageNet, or with
    stride-2 convolutions and no pooling (``pool=False, strides=2``) as MAML and learn2learn
    use on 28×28 Omniglot, which needs about 3.7× fewer multiply-adds there.
    Under :class:`~keras_selfevo.MetaLearner` the block runs through ``stateless_call`` like
    any layer; its BatchNorm then uses batch statistics (training mode).

    Args:
        filters: Output channels of the convolution.
        kernel_size: Square kernel size (``"same"`` padding).
        pool: Follow with 2×2 max pooling (``"valid"``: a 7×7 map becomes 3×3).
        strides: Convolution stride (``"same"`` padding: stride 2 turns 7×7 into 4×4).
        normalization: ``"batch"`` for batch normalization (:class:`FusedBatchNormalization`,
            Keras's layer with a fused training kernel), or ``None``.
        **kwargs: Base layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, filters: int, kernel_size: int = 3, pool: bool = True,
                 normalization: str | None = "batch", strides: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        for arg, value in (("filters", filters), ("kernel_size", kernel_size),
                           ("strides", strides)):
            _checks.positive_int(value, arg)
        _checks.one_of(normalization, "normalization", NORMALIZATIONS)
        self.filters = filters
        self.kernel_size = kernel_size
        self.pool = bool(pool)
        self.strides = strides
        self.normalization = normalization
        policy = self.dtype_policy
        self.conv = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                                        use_bias=normalization is None, dtype=policy,
                                        name="conv")
        self.norm = (FusedBatchNormalization(dtype=policy, name="norm")
                     if normalization == "batch" else None)
        self.pooling = keras.layers.MaxPooling2D(2, dtype=policy, name="pool") if pool else None

    def build(self, input_shape) -> None:
        self.conv.build(input_shape)
        shape = self.conv.compute_output_shape(input_shape)
        if self.norm is not None:
            self.norm.build(shape)
        self.built = True

    def call(self, inputs, training: bool | None = None):
        h = self.conv(inputs)
        if self.norm is not None:
            h = self.norm(h, training=training)
        h = keras.ops.relu(h)
        return self.pooling(h) if self.pooling is not None else h

    def compute_output_shape(self, input_shape):
        shape = self.conv.compute_output_shape(input_shape)
        return self.pooling.compute_output_shape(shape) if self.pooling is not None else shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "pool": self.pool,
            "strides": self.strides,
            "normalization": self.normalization,
        }
