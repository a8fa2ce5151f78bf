"""The reward-weighted squared loss ``L_reinforce = mean_i w(r_i) * ||y_i - a_i f(x_i)||^2``."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from keras_selfevo.losses.reward_weighting import RewardWeighting, get_reward_weighting


def per_sample_vector(value: tf.Tensor, name: str) -> tf.Tensor:
    """A per-sample scalar given as (batch,) or (batch, 1), as float32 (batch,)."""
    value = tf.cast(value, tf.float32)
    if value.shape.rank is not None and value.shape.rank > 2:
        raise ValueError(f"`{name}` must have shape (batch,) or (batch, 1), got {value.shape}.")
    return tf.reshape(value, [-1])


def squared_error_per_sample(
    target: tf.Tensor, output: tf.Tensor, action: tf.Tensor | None = None
) -> tf.Tensor:
    """``mean over output elements of (target - a * output)^2`` per sample, as float32.

    ``action`` is one scale per sample (``None``: 1), as in the seed's ``||y - a f(x)||^2``.
    """
    output = tf.cast(output, tf.float32)
    if action is not None:
        scale = per_sample_vector(action, "action")
        output = output * tf.reshape(scale, [-1] + [1] * (output.shape.rank - 1))
    error = tf.square(tf.cast(target, tf.float32) - output)
    if error.shape.rank == 1:
        return error
    return tf.reduce_mean(error, axis=list(range(1, error.shape.rank)))


@keras.saving.register_keras_serializable(package="keras_selfevo")
class RewardWeightedSquaredLoss(keras.losses.Loss):
    """``L_reinforce``: squared error toward the targets, weighted by ``w(reward)``.

    Called as ``loss({"policy": y, "reward": r, "action": a?}, f_x)``. The squared error
    of a sample is averaged over its output elements (as ``MeanSquaredError``); its weight
    ``w(r)`` comes from the reward weighting, with batch statistics over this call's batch.
    (Inside ``SelfEvolvingModel`` they are over the global batch across replicas.)

    Args:
        reward_weighting: ``"raw"``, ``"normalized"``, ``"awr"``, ``"filter"``, a
            :class:`~keras_selfevo.losses.RewardWeighting` or a callable ``r -> w``.
        reduction: A Keras loss reduction.
        name: Loss name.
    """

    def __init__(
        self,
        reward_weighting: str | RewardWeighting = "raw",
        reduction: str = "sum_over_batch_size",
        name: str = "reward_weighted_squared_loss",
        **kwargs,
    ):
        super().__init__(reduction=reduction, name=name, **kwargs)
        self.reward_weighting = get_reward_weighting(reward_weighting)

    def call(self, y_true: Mapping[str, tf.Tensor], y_pred: tf.Tensor) -> tf.Tensor:
        if not isinstance(y_true, Mapping) or not {"policy", "reward"} <= set(y_true):
            raise ValueError(
                "`y_true` must be a dict with keys 'policy' and 'reward' (and optionally "
                f"'action'), got {type(y_true).__name__}."
            )
        rewards = per_sample_vector(y_true["reward"], 'y_true["reward"]')
        weights = self.reward_weighting(rewards)
        return weights * squared_error_per_sample(y_true["policy"], y_pred, y_true.get("action"))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "reward_weighting": keras.saving.serialize_keras_object(self.reward_weighting),
        }

    @classmethod
    def from_config(cls, config: dict) -> RewardWeightedSquaredLoss:
        config = dict(config)
        config["reward_weighting"] = get_reward_weighting(config["reward_weighting"])
        return cls(**config)
