"""FusedBatchNormalization: Keras's BatchNormalization, trained with one fused kernel on images."""

from __future__ import annotations

import keras
import tensorflow as tf

# The fused kernels (oneDNN on CPU, cuDNN on GPU) reject smaller epsilons.
_MIN_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="keras_selfevo")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step on NHWC images is one fused op.

    Same arguments, weights, moving-statistics update and results as the Keras layer (to
    float32 round-off). In training mode on a rank-4 float32 batch normalized over its last
    axis it runs TensorFlow's ``FusedBatchNormV3``: the forward pass, its gradient and the
    gradient of that gradient (the second-order terms MAML needs, exact: TensorFlow's
    registered second derivative recomputes the batch moments from the input) are a few
    kernels instead of a dozen elementwise ops and reductions per pass. On the conv4
    meta-learning step this about halves the time (benchmarks/README.md). Every other case
    (inference, float64, masks, renorm, synchronized statistics, other ranks or axes, an
    epsilon below the kernels' 1.001e-5) runs the Keras layer's own code.
    """

    def _fusable(self, inputs, mask) -> bool:
        """Whether this training call can run the fused kernel."""
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and self.epsilon >= _MIN_EPSILON
            and keras.backend.result_type(inputs.dtype, "float32") == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        """Normalize ``inputs``; see ``keras.layers.BatchNormalization.call``."""
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        empty = tf.constant([], tf.float32)
        y, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=empty, variance=empty,
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        # The kernel returns the Bessel-corrected variance; Keras keeps the batch's own.
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = unbiased * ((count - 1.0) / tf.maximum(count, 1.0))
        momentum = self.momentum
        self.moving_mean.assign(tf.cast(self.moving_mean, tf.float32) * momentum
                                + mean * (1.0 - momentum))
        self.moving_variance.assign(tf.cast(self.moving_variance, tf.float32) * momentum
                                    + variance * (1.0 - momentum))
        return tf.cast(y, self.compute_dtype)
