"""PseudoLabel: a classifier's confident predictions as one-hot targets and a mask."""

from __future__ import annotations

from typing import Any

import keras

from keras_selfevo._internal import checks as _checks


@keras.saving.register_keras_serializable(package="keras_selfevo")
class PseudoLabel(keras.layers.Layer):
    """Turn class probabilities into one-hot pseudo-labels where they are confident.

    Returns ``(target, mask)``, both of the input's shape ``[..., classes]``: ``target`` is
    the one-hot arg max of each row and ``mask`` is 1.0 on every element of the rows whose
    largest probability reaches ``threshold`` (0.0 elsewhere). As a model's
    ``"self_target"`` and ``"mask"`` outputs, compiled with ``masked_self_loss=True``, they
    make the self-loss a confidence-thresholded pseudo-label loss (FixMatch-style): only the
    confident rows count, each toward its predicted class.

    Args:
        threshold: The confidence a row needs, in (0, 1].
        **kwargs: Base layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, threshold: float = 0.9, **kwargs: Any):
        super().__init__(**kwargs)
        self.threshold = _checks.number(threshold, "threshold", 0.0, 1.0, low_open=True,
                                        kind="a float")
        self.supports_masking = False

    def call(self, probabilities):
        classes = keras.ops.shape(probabilities)[-1]
        target = keras.ops.one_hot(keras.ops.argmax(probabilities, axis=-1), classes,
                                   dtype=probabilities.dtype)
        confident = keras.ops.max(probabilities, axis=-1, keepdims=True) >= self.threshold
        # Neither an arg max nor a comparison has a gradient: both outputs are constants.
        mask = keras.ops.cast(confident, probabilities.dtype) * keras.ops.ones_like(
            probabilities)
        return target, mask

    def compute_output_shape(self, input_shape):
        return input_shape, input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}
