"""The objective ``alpha * L_self + (1 - alpha) * L_reinforce (+ kl_beta * KL)`` of a batch.

:func:`loss_terms` computes it for :class:`~keras_selfevo.SelfEvolvingModel`'s train and
test steps from the settings the model was compiled with (``alpha``, ``self_loss``,
``reinforce_loss``, ``reward_weighting``, ``masked_self_loss``, ``kl_beta``). Every term is a
mean over the **global** batch: each replica computes local sums, and the counts they are
means over (examples, self-loss positions, masked elements, reinforce counts) are summed
across replicas in one reduction, so a step on several replicas equals a step on one device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import keras
import tensorflow as tf

from keras_selfevo.losses.reward_weighted_squared_loss import per_sample_vector
from keras_selfevo.training.input_checks import first_tensor


class Outputs(NamedTuple):
    """A prediction's parts.

    ``self`` and ``policy`` (one tensor serves both when the model has a single output), the
    self-loss ``mask`` and the model's own ``self_target``.
    """

    self: Any
    policy: Any
    mask: Any = None
    self_target: Any = None


class LossTerms(NamedTuple):
    """Per-replica contributions; summed over replicas they give the global values."""

    total: tf.Tensor
    self_loss: tf.Tensor
    reinforce_loss: tf.Tensor
    alpha: tf.Tensor
    global_batch: tf.Tensor
    kl: tf.Tensor


def split_outputs(y_pred: Any) -> Outputs:
    """The parts of a prediction: a dict's keys, or one tensor for both terms."""
    if isinstance(y_pred, Mapping):
        return Outputs(y_pred.get("self"), y_pred.get("policy"), y_pred.get("mask"),
                       y_pred.get("self_target"))
    return Outputs(y_pred, y_pred)


def per_sample_weight(sample_weight: Any) -> tf.Tensor | None:
    """``fit``'s sample weight as one value per example, or None."""
    if isinstance(sample_weight, Mapping):
        # Keras's array adapter repeats a per-sample weight for every key of y.
        sample_weight = next((w for w in sample_weight.values() if w is not None), None)
    return None if sample_weight is None else per_sample_vector(sample_weight, "sample_weight")


def replica_sum(value: tf.Tensor) -> tf.Tensor:
    """Sum over the replicas in sync (identity without distribution)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def _self_sums(model: keras.Model, x: Any, y: Mapping, outputs: Outputs,
               sample_weight: tf.Tensor | None) -> tuple[tf.Tensor, ...]:
    """Local sums of the self-loss: (all positions, positions, masked, masked count).

    A position is one prediction (:mod:`keras_selfevo.losses.self_loss`). The target is
    ``y["self"]``, else the model's own ``"self_target"`` output (held constant: no
    gradient flows into it), else the input.
    """
    zero = tf.constant(0.0)
    if not model.uses_self_loss():
        return zero, zero, zero, zero
    if "self" in y:
        target, source = y["self"], '`y["self"]`'
    elif outputs.self_target is not None:
        target, source = tf.stop_gradient(outputs.self_target), "the 'self_target' output"
    else:
        target, source = first_tensor(x), "the input `x`"
    model.self_loss.check_shape(target, outputs.self, source)
    elements, valid, per_position = model.self_loss.terms(target, outputs.self)
    if valid is not None:
        elements = elements * valid
    if sample_weight is not None:
        elements = elements * tf.reshape(sample_weight, [-1] + [1] * (elements.shape.rank - 1))
    plain_sum = tf.reduce_sum(elements) / per_position
    positions = (tf.cast(tf.size(elements), tf.float32) / per_position if valid is None
                 else tf.reduce_sum(valid))
    if not model.masked_self_loss:
        return plain_sum, positions, zero, zero
    mask = tf.cast(outputs.mask, tf.float32)
    if valid is not None:
        mask = mask * valid
    return plain_sum, positions, tf.reduce_sum(elements * mask), tf.reduce_sum(mask)


def _reinforce_sums(model: keras.Model, y: Mapping, policy: Any,
                    sample_weight: tf.Tensor | None,
                    ) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
    """The replica's weighted reinforce sum, its count and the global batch's rewards.

    The count is None for a mean over the examples; the rewards are gathered across
    replicas (the weighting's statistics are over the global batch).
    """
    if not model.uses_reinforce_loss():
        return tf.constant(0.0), None, None
    rewards = per_sample_vector(y["reward"], 'y["reward"]')
    context = tf.distribute.get_replica_context()
    batch_rewards = (context.all_gather(rewards, axis=0)
                     if context.num_replicas_in_sync > 1 else rewards)
    model.reinforce_loss.check_target(y["policy"], policy)
    weights = model.reward_weighting(rewards, batch_rewards)
    total, count = model.reinforce_loss.sums(y, policy, weights, sample_weight)
    return total, count, batch_rewards


def _global_counts(counts: list[tf.Tensor], after: tf.Tensor | None) -> list[tf.Tensor]:
    """``counts`` summed over replicas, in one reduction.

    It is issued ``after`` the gather of the rewards: replicas must run their collectives
    in the same order.
    """
    if tf.distribute.get_replica_context().num_replicas_in_sync == 1:
        return counts
    with tf.control_dependencies([] if after is None else [after]):
        return tf.unstack(replica_sum(tf.stack(counts)))


def loss_terms(model: keras.Model, x: Any, y: Mapping, y_pred: Any, sample_weight: Any,
               training: bool = False) -> LossTerms:
    """The objective of one batch, for ``model`` (a compiled SelfEvolvingModel).

    Args:
        model: The model, compiled: its settings say which terms count and how.
        x: The batch's inputs.
        y: Its targets (``{}`` for none).
        y_pred: The model's outputs on ``x``.
        sample_weight: ``fit``'s sample weight, or None.
        training: A training step: a batch with nothing masked has no self-loss.
    """
    outputs = split_outputs(y_pred)
    sample_weight = per_sample_weight(sample_weight)
    self_sums = _self_sums(model, x, y, outputs, sample_weight)
    reinforce_sum, reinforce_count, batch_rewards = _reinforce_sums(
        model, y, outputs.policy, sample_weight)
    batch = tf.cast(tf.shape(first_tensor(x))[0], tf.float32)
    counts = _global_counts([batch, self_sums[1], self_sums[3]]
                            + ([] if reinforce_count is None else [reinforce_count]),
                            batch_rewards)
    global_batch, global_positions, global_masked = counts[:3]
    self_loss = self_sums[0] / tf.maximum(global_positions, 1.0)
    if model.masked_self_loss:
        masked = self_sums[2] / tf.maximum(global_masked, 1.0)
        # With nothing masked, evaluation scores every element (masking is off there);
        # a training batch has nothing to learn from (e.g. no confident pseudo-label).
        self_loss = tf.where(global_masked > 0, masked,
                             tf.constant(0.0) if training else self_loss)
    reinforce_loss = reinforce_sum / tf.maximum(
        global_batch if reinforce_count is None else counts[3], 1.0)
    alpha = tf.cast(model.alpha(model.optimizer.iterations), tf.float32)
    total = alpha * self_loss + (1.0 - alpha) * reinforce_loss
    kl = tf.constant(0.0)
    if model.kl_beta:
        if not model.has_reference:
            raise ValueError("`kl_beta` > 0 needs a reference policy: call "
                             "model.set_reference() (fit does at its start).")
        kl = model.reference.kl_sum(model, x, outputs.policy, sample_weight) / tf.maximum(
            global_batch, 1.0)
        total = total + model.kl_beta * kl
    return LossTerms(total, self_loss, reinforce_loss, alpha, global_batch, kl)
