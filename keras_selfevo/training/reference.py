"""The reference policy a ``kl_beta`` penalty anchors to: frozen weights and the exact KL."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo.training.objective import split_outputs


class ReferencePolicy:
    """A frozen copy of a model's trainable weights, out of Keras's and TensorFlow's tracking.

    It is not saved with the model. :meth:`kl_sum` runs the model on these weights to score
    ``KL(policy || reference)``.

    Args:
        model: The model whose trainable weights are copied.
        values: Their values, in order (``None``: their current values).
    """

    def __init__(self, model: keras.Model, values: list | None = None):
        values = self._checked(model, values)
        with model.distribute_strategy.scope():
            self.variables = [tf.Variable(tf.cast(value, w.dtype), trainable=False)
                              for value, w in zip(values, model.trainable_weights)]

    @staticmethod
    def _checked(model: keras.Model, values: list | None) -> list:
        values = ([tf.convert_to_tensor(v) for v in model.trainable_weights] if values is None
                  else list(values))
        shapes = [tuple(v.shape) for v in model.trainable_weights]
        if [tuple(np.shape(v)) for v in values] != shapes:
            raise ValueError(f"`weights` must match the model's trainable weights: "
                             f"{len(shapes)} arrays of shapes {shapes}; got "
                             f"{[tuple(np.shape(v)) for v in values]}.")
        return values

    def assign(self, model: keras.Model, values: list | None = None) -> None:
        """Freeze new values, in place: a traced step keeps reading the same variables."""
        for variable, value in zip(self.variables, self._checked(model, values)):
            variable.assign(tf.cast(value, variable.dtype))

    def kl_sum(self, model: keras.Model, x: Any, policy: tf.Tensor,
               sample_weight: tf.Tensor | None) -> tf.Tensor:
        """Local sum over samples of ``KL(policy || reference)``, averaged over positions.

        Exact over the ``"policy"`` output's last axis (a probability distribution), with
        ``0 * log 0 = 0``; ``log q`` is floored so that a token the reference rules out gives
        a large, finite penalty.
        """
        reference_values = [tf.convert_to_tensor(v) for v in self.variables]
        outputs, _ = model.stateless_call(
            reference_values, [tf.convert_to_tensor(v) for v in model.non_trainable_variables],
            x, training=False)
        reference = tf.stop_gradient(tf.cast(split_outputs(outputs).policy, tf.float32))
        p = tf.cast(policy, tf.float32)
        kl = tf.reduce_sum(tf.math.xlogy(p, p) - tf.math.xlogy(p, tf.maximum(reference, 1e-12)),
                           axis=-1)
        if kl.shape.rank > 1:
            kl = tf.reduce_mean(kl, axis=list(range(1, kl.shape.rank)))
        return tf.reduce_sum(kl if sample_weight is None else kl * sample_weight)
