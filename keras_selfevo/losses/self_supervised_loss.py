"""The self-supervised loss: binary cross-entropy against targets the model makes itself."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_selfevo.losses.self_loss import binary_crossentropy_elements


@keras.saving.register_keras_serializable(package="keras_selfevo")
class SelfSupervisedLoss(keras.losses.Loss):
    """Binary cross-entropy self-loss ``L_self``, valued as ``keras.losses.BinaryCrossentropy``.

    The per-sample value is the mean over the last axis; the default reduction then
    averages over the batch (and any other axes). Targets must lie in [0, 1]: the model's
    own (clean) input for denoising or masked reconstruction, or a one-hot next token.

    With ``mask`` given (``call(..., mask=...)``, e.g. from
    :class:`~keras_selfevo.layers.RandomMasking`), only masked elements count:
    ``sum(bce * mask) / sum(mask)``.

    Args:
        from_logits: Whether predictions are logits rather than probabilities.
        reduction: A Keras loss reduction.
        name: Loss name.
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction: str = "sum_over_batch_size",
        name: str = "self_supervised_loss",
        **kwargs,
    ):
        super().__init__(reduction=reduction, name=name, **kwargs)
        self.from_logits = from_logits

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(binary_crossentropy_elements(y_true, y_pred, self.from_logits), -1)

    def masked(self, y_true: tf.Tensor, y_pred: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """The loss over masked elements only: ``sum(bce * mask) / max(sum(mask), 1)``."""
        mask = tf.cast(mask, tf.float32)
        elements = binary_crossentropy_elements(y_true, y_pred, self.from_logits)
        return tf.reduce_sum(elements * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}
