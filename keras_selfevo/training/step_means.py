"""StepMeans: the loss terms' logs of SelfEvolvingModel as one metric."""

from __future__ import annotations

import keras
import tensorflow as tf


class StepMeans(keras.metrics.Metric):
    """Weighted means of ``loss``, ``self_loss``, ``reinforce_loss``, ``alpha`` (and ``kl``).

    One metric with a vector state instead of one ``Mean`` tracker per log: the step
    updates two variables, and ``result()`` returns the logs as a dict.

    Args:
        names: The logged names, in the order of the values given to ``update_state``.
        name: Metric name.
        **kwargs: Base metric arguments.
    """

    def __init__(self, names: tuple[str, ...] = ("loss", "self_loss", "reinforce_loss",
                                                 "alpha"), name: str = "step_means", **kwargs):
        super().__init__(name=name, **kwargs)
        self.names = tuple(names)
        self.totals = self.add_variable(
            shape=(len(self.names),), initializer="zeros", dtype="float32", name="totals"
        )
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                       name="count")

    def update_state(self, values: tf.Tensor, sample_weight: tf.Tensor) -> None:
        """Add ``values`` (one per name) with the scalar weight ``sample_weight``."""
        self.totals.assign_add(values * sample_weight)
        self.count.assign_add(sample_weight)

    def reset_state(self) -> None:
        self.totals.assign(tf.zeros_like(self.totals))
        self.count.assign(0.0)

    def result(self) -> dict[str, tf.Tensor]:
        means = tf.math.divide_no_nan(tf.convert_to_tensor(self.totals), self.count)
        return dict(zip(self.names, tf.unstack(means)))
