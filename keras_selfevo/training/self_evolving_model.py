"""SelfEvolvingModel: one train step for ``alpha * L_self + (1 - alpha) * L_reinforce``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf
from keras.src.models.functional import Functional
from keras.src.models.model import functional_init_arguments
from keras.src.saving import serialization_lib
from keras.src.utils import tracking

from keras_selfevo import _checks
from keras_selfevo.distribute import multi_worker_logs
from keras_selfevo.losses.reward_weighted_squared_loss import (
    per_sample_vector,
    squared_error_per_sample,
)
from keras_selfevo.losses.reward_weighting import RewardWeighting, get_reward_weighting
from keras_selfevo.losses.self_supervised_loss import (
    SELF_LOSSES,
    binary_crossentropy_elements,
    sparse_categorical_elements,
)
from keras_selfevo.training import first_trace
from keras_selfevo.training.alpha_schedules import AlphaSchedule, get_alpha
from keras_selfevo.training.input_checks import (
    InputChecks,
    first_tensor,
    input_errors_as_value_errors,
)
from keras_selfevo.training.non_finite import StopOnNonFinite, loss_for_logs, weights_are_finite
from keras_selfevo.training.serving import (
    ServingSignature,
    input_specs,
    predict_signatures,
    self_policy_outputs,
)


class _LossTerms(NamedTuple):
    """Per-replica contributions; summed over replicas they give the global values."""

    total: tf.Tensor
    self_loss: tf.Tensor
    reinforce_loss: tf.Tensor
    alpha: tf.Tensor
    global_batch: tf.Tensor
    kl: tf.Tensor


def _per_sample_weight(sample_weight: Any) -> tf.Tensor | None:
    """``fit``'s sample weight as one value per example, or None."""
    if isinstance(sample_weight, Mapping):
        # Keras's array adapter repeats a per-sample weight for every key of y.
        sample_weight = next((w for w in sample_weight.values() if w is not None), None)
    return None if sample_weight is None else per_sample_vector(sample_weight, "sample_weight")


def _replica_sum(value: tf.Tensor) -> tf.Tensor:
    """Sum over the replicas in sync (identity without distribution)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def _times_no_nan(gradient: Any, keep: tf.Tensor) -> Any:
    """``gradient * keep`` with ``0 * NaN = 0`` (dense or ``IndexedSlices``)."""
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        values = tf.math.multiply_no_nan(gradient.values, tf.cast(keep, gradient.dtype))
        return tf.IndexedSlices(values, gradient.indices, gradient.dense_shape)
    return tf.math.multiply_no_nan(gradient, tf.cast(keep, gradient.dtype))


class _Frozen:
    """Holds variables out of Keras's and TensorFlow's tracking (not saved with the model)."""

    def __init__(self, variables: list[tf.Variable]):
        self.variables = variables


class _StepMeans(keras.metrics.Metric):
    """Weighted means of ``loss``, ``self_loss``, ``reinforce_loss``, ``alpha`` (and ``kl``).

    One metric with a vector state instead of one ``Mean`` tracker per log: the step
    updates two variables, and ``result()`` returns the logs as a dict.
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


@keras.saving.register_keras_serializable(package="keras_selfevo")
class SelfEvolvingModel(InputChecks, keras.Model):
    """A Keras model trained on ``L = alpha * L_self + (1 - alpha) * L_reinforce``.

    Build it functionally, ``SelfEvolvingModel(inputs=x, outputs={"self": s, "policy": p})``,
    or subclass it with a ``call`` returning such a dict (one output serves both terms; an
    optional ``"mask"`` output from :class:`~keras_selfevo.layers.RandomMasking` lets the
    self-loss count masked elements only; an optional ``"self_target"`` output is the self
    target when ``y`` has none, held constant, e.g. the model's own prediction on a clean
    view for a consistency self-loss). ``L_self`` is binary cross-entropy against
    ``y["self"]`` (or the input itself); ``L_reinforce`` the reward-weighted squared error of
    the ``"policy"`` output toward ``y["policy"]``. Both are means over the global batch
    under ``tf.distribute``; bad inputs raise ``ValueError`` before any update and a
    non-finite step applies no gradient. The README's "The objective" section gives the
    data format and every guarantee.

    Example:
    >>> inputs = keras.Input((8,))
    >>> h = keras.layers.Dense(16, activation="relu")(inputs)
    >>> model = SelfEvolvingModel(inputs, {
    ...     "self": keras.layers.Dense(8, activation="sigmoid")(h),
    ...     "policy": keras.layers.Dense(3)(h)})
    >>> model.compile(optimizer="adam", alpha=0.7, reward_weighting="awr")
    >>> x = np.random.rand(32, 8).astype("float32")
    >>> y = {"policy": np.eye(3)[np.arange(32) % 3], "reward": np.random.rand(32)}
    >>> history = model.fit(x, y, epochs=1, verbose=0)  # self target: the input
    >>> sorted(history.history)
    ['alpha', 'loss', 'reinforce_loss', 'self_loss']
    """

    def __new__(cls, *args, **kwargs):
        # Built from inputs and outputs, the model is a FunctionalSelfEvolvingModel, as
        # keras.Model(inputs, outputs) is a Functional.
        if cls is SelfEvolvingModel and functional_init_arguments(args, kwargs):
            return keras.Model.__new__(FunctionalSelfEvolvingModel, *args, **kwargs)
        return super().__new__(cls, *args, **kwargs)

    # Like keras.Model.compile: trackers made here are not layer state (a subclassed model
    # may already be built and its state locked).
    @tracking.no_automatic_dependency_tracking
    def compile(
        self,
        optimizer: str | keras.optimizers.Optimizer = "adam",
        alpha: float | AlphaSchedule | Callable[[tf.Tensor], tf.Tensor] = 0.5,
        reward_weighting: str | RewardWeighting | Callable[[tf.Tensor], tf.Tensor] = "raw",
        self_from_logits: bool = False,
        masked_self_loss: bool = False,
        self_loss: str = "binary_crossentropy",
        self_ignore_class: int | None = None,
        kl_beta: float = 0.0,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: bool | str = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Configure training.

        Args:
            optimizer: A Keras optimizer or its name.
            alpha: Weight of the self-loss: a float in [0, 1], an
                :class:`~keras_selfevo.training.AlphaSchedule` (``LinearAlpha``,
                ``CosineAlpha``) or a callable of the optimizer step. With a float of
                exactly 1 (or 0) the other term is not computed and its targets are not
                needed.
            reward_weighting: ``"raw"`` (w = r, r ≥ 0), ``"normalized"``, ``"awr"``,
                ``"filter"`` (batch median), a
                :class:`~keras_selfevo.losses.RewardWeighting`, or a callable ``r -> w``.
            self_from_logits: The ``"self"`` output holds logits, not probabilities.
            self_loss: ``"binary_crossentropy"`` (targets in [0, 1], the shape of the
                ``"self"`` output) or ``"sparse_categorical_crossentropy"``: the next-token
                log-likelihood, integer targets ``[batch, time]`` against scores
                ``[batch, time, vocab]`` (logits with ``self_from_logits=True``).
            self_ignore_class: With the categorical self-loss, a target id that does not
                count (padding), e.g. ``keras_selfevo.data.text.PAD``.
            masked_self_loss: Count only masked elements in ``L_self``; needs a ``"mask"``
                output. Where a batch has no masked element, a training step has no
                self-loss and evaluation counts every element (masking is off there).
            kl_beta: Weight of a reference anchor ``kl_beta * KL(policy || reference)``
                added to the loss (and logged as ``kl``): the exact KL divergence over the
                last axis of the ``"policy"`` output (a probability distribution, e.g. the
                next-token softmax of a language model), averaged over its positions and
                the global batch, against the policy of frozen reference weights
                (:meth:`set_reference`; by default the weights when ``fit`` first runs).
            metrics: Metrics of the ``"policy"`` output against ``y["policy"]``.
            weighted_metrics: Same, weighted by ``sample_weight``.
            run_eagerly: As in ``keras.Model.compile``.
            steps_per_execution: As in ``keras.Model.compile``.
            jit_compile: As in ``keras.Model.compile``.
            auto_scale_loss: As in ``keras.Model.compile`` (loss scaling under
                ``mixed_float16``).
        """
        self.alpha = get_alpha(alpha)
        self.reward_weighting = get_reward_weighting(reward_weighting)
        self.self_loss = _checks.one_of(self_loss, "self_loss", SELF_LOSSES)
        if self_ignore_class is not None:
            _checks.non_negative_int(self_ignore_class, "self_ignore_class")
        self.self_ignore_class = self_ignore_class
        self.self_from_logits = bool(self_from_logits)
        self.masked_self_loss = bool(masked_self_loss)
        self.kl_beta = _checks.number(kl_beta, "kl_beta", 0.0)
        self._check_output_names()
        super().compile(
            optimizer=optimizer,
            loss=None,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            auto_scale_loss=auto_scale_loss,
        )
        names = ("loss", "self_loss", "reinforce_loss", "alpha") + (
            ("kl",) if self.kl_beta else ())
        with self.distribute_strategy.scope():
            self._step_means = _StepMeans(names)
        keras_config = dict(self._compile_config.config)
        del keras_config["loss"], keras_config["loss_weights"]  # fixed by this class
        self._compile_config = serialization_lib.SerializableDict(
            **keras_config,
            alpha=alpha,  # as given: a float stays a float in the saved config
            reward_weighting=self.reward_weighting,
            self_from_logits=self.self_from_logits,
            masked_self_loss=self.masked_self_loss,
            self_loss=self.self_loss,
            self_ignore_class=self.self_ignore_class,
            kl_beta=self.kl_beta,
            auto_scale_loss=auto_scale_loss,
        )

    def compile_from_config(self, config: dict) -> None:
        """Compile with the settings stored by :meth:`get_compile_config` (``.keras`` load)."""
        config = serialization_lib.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The loss terms' means (``loss``, ``self_loss``, ...) and the compiled metrics."""
        step_means = getattr(self, "_step_means", None)
        if step_means is None:
            return super().metrics
        keras_metrics = [m for m in super().metrics if m is not self._loss_tracker]
        return [step_means] + keras_metrics

    # ------------------------------------------------------------------ reference anchor
    def set_reference(self, weights: list | None = None) -> None:
        """Freeze the policy the ``kl_beta`` penalty anchors to.

        Args:
            weights: Values of the model's trainable weights, in their order (``None``:
                their current values). They are copied; they are not saved with the model.
        """
        values = ([tf.convert_to_tensor(v) for v in self.trainable_weights] if weights is None
                  else list(weights))
        shapes = [tuple(v.shape) for v in self.trainable_weights]
        if [tuple(np.shape(v)) for v in values] != shapes:
            raise ValueError(f"`weights` must match the model's trainable weights: "
                             f"{len(shapes)} arrays of shapes {shapes}; got "
                             f"{[tuple(np.shape(v)) for v in values]}.")
        frozen = getattr(self, "_reference", None)
        if frozen is not None:
            # Assigned in place: a traced step keeps reading the same variables.
            for variable, value in zip(frozen.variables, values):
                variable.assign(tf.cast(value, variable.dtype))
            return
        with self.distribute_strategy.scope():
            variables = [tf.Variable(tf.cast(value, w.dtype), trainable=False)
                         for value, w in zip(values, self.trainable_weights)]
        object.__setattr__(self, "_reference", _Frozen(variables))

    @property
    def has_reference(self) -> bool:
        """Whether :meth:`set_reference` has frozen a reference policy."""
        return getattr(self, "_reference", None) is not None

    def _kl_sum(self, x: Any, policy: tf.Tensor, sample_weight: Any) -> tf.Tensor:
        """Local sum over samples of ``KL(policy || reference)``, averaged over positions."""
        reference_values = [tf.convert_to_tensor(v) for v in self._reference.variables]
        outputs, _ = self.stateless_call(
            reference_values, [tf.convert_to_tensor(v) for v in self.non_trainable_variables],
            x, training=False)
        reference = tf.stop_gradient(tf.cast(self._split_outputs(outputs)[1], tf.float32))
        p = tf.cast(policy, tf.float32)
        # Exact over the last axis; 0 * log 0 = 0, and log q is floored so that a token the
        # reference rules out gives a large, finite penalty.
        kl = tf.reduce_sum(tf.math.xlogy(p, p) - tf.math.xlogy(p, tf.maximum(reference, 1e-12)),
                           axis=-1)
        if kl.shape.rank > 1:
            kl = tf.reduce_mean(kl, axis=list(range(1, kl.shape.rank)))
        return tf.reduce_sum(kl if sample_weight is None else kl * sample_weight)

    # ------------------------------------------------------------------------------ steps
    def _alpha_value(self) -> tf.Tensor:
        return tf.cast(self.alpha(self.optimizer.iterations), tf.float32)

    def _split_outputs(self, y_pred: Any) -> tuple[Any, Any, Any]:
        if isinstance(y_pred, Mapping):
            return y_pred.get("self"), y_pred.get("policy"), y_pred.get("mask")
        return y_pred, y_pred, None

    @property
    def categorical_self_loss(self) -> bool:
        """Whether the self-loss is the next-token log-likelihood over integer targets."""
        return getattr(self, "self_loss", "binary_crossentropy") != "binary_crossentropy"

    def _self_sums(self, x: Any, y: Mapping, output: tf.Tensor, mask: Any,
                   sample_weight: tf.Tensor | None,
                   own_target: tf.Tensor | None = None) -> tuple[tf.Tensor, ...]:
        """Local sums of the self-loss: (all positions, positions, masked, masked count).

        A position is one prediction: for BCE, the mean over the last axis of one example's
        elements; for the categorical loss, one target token (``self_ignore_class`` ones
        do not count). The target is ``y["self"]``, else the model's own ``"self_target"``
        output (held constant: no gradient flows into it), else the input.
        """
        if "self" in y:
            target = y["self"]
        elif own_target is not None:
            target = tf.stop_gradient(own_target)
        else:
            target = first_tensor(x)
        categorical = self.categorical_self_loss
        # Token ids (one axis fewer than the scores) are the language models' self target
        # whatever the loss; BCE scores them against their one-hot.
        ids = self._is_token_target(target, output.shape.rank)
        output_shape = output.shape[1:-1] if categorical or ids else output.shape[1:]
        if (target.shape.rank is not None and output.shape.rank is not None
                and target.shape[1:].is_fully_defined() and output_shape.is_fully_defined()
                and target.shape[1:] != output_shape):
            source = ('`y["self"]`' if "self" in y else "the 'self_target' output"
                      if own_target is not None else "the input `x`")
            expected = (f"{output_shape} (the 'self' output {output.shape} without its "
                        "vocabulary axis)" if categorical else f"{output.shape}")
            raise ValueError(
                f"The self target ({source}) has shape {target.shape} but the self loss "
                f"{self.self_loss!r} needs per-example shape {expected}."
            )
        if categorical:
            elements = sparse_categorical_elements(target, output, self.self_from_logits)
            valid = (None if self.self_ignore_class is None else tf.cast(
                tf.not_equal(tf.cast(target, tf.int32), self.self_ignore_class), tf.float32))
            last = tf.constant(1.0)
        else:
            if ids:
                target = tf.one_hot(tf.cast(target, tf.int32), tf.shape(output)[-1])
            elements = binary_crossentropy_elements(target, output, self.self_from_logits)
            valid = None
            # Sum over positions of the per-position mean over the last axis.
            last = tf.cast(tf.shape(elements)[-1], tf.float32)
        if valid is not None:
            elements = elements * valid
        if sample_weight is not None:
            elements = elements * tf.reshape(sample_weight,
                                             [-1] + [1] * (elements.shape.rank - 1))
        plain_sum = tf.reduce_sum(elements) / last
        positions = (tf.cast(tf.size(elements), tf.float32) / last if valid is None
                     else tf.reduce_sum(valid))
        if not self.masked_self_loss:
            return plain_sum, positions, tf.constant(0.0), tf.constant(0.0)
        mask = tf.cast(mask, tf.float32)
        if valid is not None:
            mask = mask * valid
        masked = elements * mask
        return plain_sum, positions, tf.reduce_sum(masked), tf.reduce_sum(mask)

    def _loss_terms(self, x: Any, y: Any, y_pred: Any, sample_weight: Any,
                    training: bool = False) -> _LossTerms:
        self._check_targets(x, y)
        self._check_outputs(y_pred)
        y = y or {}
        self_out, policy_out, mask = self._split_outputs(y_pred)
        batch = tf.cast(tf.shape(first_tensor(x))[0], tf.float32)
        sample_weight = _per_sample_weight(sample_weight)
        zero = tf.constant(0.0, tf.float32)
        own_target = y_pred.get("self_target") if isinstance(y_pred, Mapping) else None
        self_sums = (self._self_sums(x, y, self_out, mask, sample_weight, own_target)
                     if self._needs_self() else (zero,) * 4)
        context = tf.distribute.get_replica_context()
        distributed = context.num_replicas_in_sync > 1
        rewards = batch_rewards = None
        if self._needs_reinforce():
            rewards = per_sample_vector(y["reward"], 'y["reward"]')
            batch_rewards = context.all_gather(rewards, axis=0) if distributed else rewards
        if distributed:
            # One reduction for every count, issued after the gather: replicas must run
            # their collectives in the same order.
            with tf.control_dependencies([] if batch_rewards is None else [batch_rewards]):
                global_batch, global_positions, global_masked = tf.unstack(
                    _replica_sum(tf.stack([batch, self_sums[1], self_sums[3]]))
                )
        else:
            global_batch, global_positions, global_masked = batch, self_sums[1], self_sums[3]
        self_loss = self_sums[0] / tf.maximum(global_positions, 1.0)
        if self.masked_self_loss:
            masked = self_sums[2] / tf.maximum(global_masked, 1.0)
            # With nothing masked, evaluation scores every element (masking is off there);
            # a training batch has nothing to learn from (e.g. no confident pseudo-label).
            self_loss = tf.where(global_masked > 0, masked, zero if training else self_loss)
        reinforce_loss = zero
        if self._needs_reinforce():
            self._check_policy_target(y["policy"], policy_out)
            weights = self.reward_weighting(rewards, batch_rewards)
            errors = squared_error_per_sample(y["policy"], policy_out, y.get("action"))
            weighted = weights * errors if sample_weight is None else (
                weights * errors * sample_weight)
            reinforce_loss = tf.reduce_sum(weighted) / tf.maximum(global_batch, 1.0)
        alpha = self._alpha_value()
        total = alpha * self_loss + (1.0 - alpha) * reinforce_loss
        kl = zero
        if self.kl_beta:
            if not self.has_reference:
                raise ValueError("`kl_beta` > 0 needs a reference policy: call "
                                 "model.set_reference() (fit does at its start).")
            kl = self._kl_sum(x, policy_out, sample_weight) / tf.maximum(global_batch, 1.0)
            total = total + self.kl_beta * kl
        return _LossTerms(total, self_loss, reinforce_loss, alpha, global_batch, kl)

    def _update_trackers(self, terms: _LossTerms, logged_loss: tf.Tensor) -> None:
        # Each replica holds its share of the global value; the metric sums over replicas.
        replicas = float(tf.distribute.get_replica_context().num_replicas_in_sync)
        values = [logged_loss * replicas, terms.self_loss * replicas,
                  terms.reinforce_loss * replicas, terms.alpha]
        if self.kl_beta:
            values.append(terms.kl * replicas)
        values = tf.stack(values)
        self._step_means.update_state(values, terms.global_batch / replicas)

    def _loss_is_finite(self, terms: _LossTerms) -> tf.Tensor:
        """Whether the global loss is finite (the same answer on every replica)."""
        if tf.distribute.get_replica_context().num_replicas_in_sync == 1:
            return tf.math.is_finite(terms.total)
        bad = tf.cast(tf.logical_not(tf.math.is_finite(terms.total)), tf.float32)
        return tf.equal(_replica_sum(bad), 0.0)

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        """One update on ``alpha * L_self + (1 - alpha) * L_reinforce``."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            terms = self._loss_terms(x, y, y_pred, sample_weight, training=True)
            scaled = self.optimizer.scale_loss(terms.total)
        # Every applied gradient passes through `finite`, so a failed input check (graph
        # mode) stops the step before any weight changes.
        with tf.control_dependencies(self._step_checks(x, y)):
            finite = self._loss_is_finite(terms)
        # A non-finite step contributes a zero gradient, so no NaN reaches the weights (fit
        # then stops). `multiply_no_nan(g, 0)` is 0 even where g is NaN; it costs about a
        # third of an element-wise select, and a tf.cond around the update cost 3-6% of
        # the step without XLA and ~45% with it (benchmarks/fit_overhead.py).
        keep = tf.cast(finite, tf.float32)
        gradients = [
            _times_no_nan(g, keep) for g in tape.gradient(scaled, self.trainable_weights)
        ]
        # A head whose target this data leaves out (the policy during self-supervised
        # pretraining) has no gradient and is left alone, as Keras would after warning
        # "did you forget to provide a `loss`": here the omission is by design.
        # The optimizer is built on every weight first, as Keras builds it, so its state
        # (and a checkpoint of it) does not depend on the first batch's targets.
        if not self.optimizer.built:
            with keras.name_scope(self.optimizer.name, caller=self.optimizer):
                self.optimizer.build(self.trainable_weights)
        updates = [(g, v) for g, v in zip(gradients, self.trainable_weights) if g is not None]
        self.optimizer.apply_gradients(updates or zip(gradients, self.trainable_weights))
        # A finite loss can still give a non-finite update (a NaN or diverging learning
        # rate): the weights are checked after it, and either failure logs a NaN loss.
        ok = tf.logical_and(finite, weights_are_finite(self.trainable_weights))
        self._update_trackers(terms, loss_for_logs(terms.total, ok))
        return multi_worker_logs(self.compute_metrics(x, y, y_pred, sample_weight))

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        """The same objective and metrics, without an update."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        terms = self._loss_terms(x, y, y_pred, sample_weight)
        with tf.control_dependencies(self._step_checks(x, y)):
            self._update_trackers(terms, tf.identity(terms.total))
        return multi_worker_logs(self.compute_metrics(x, y, y_pred, sample_weight))

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None):
        """Update the compiled metrics on the ``"policy"`` output; return all results.

        An example whose policy target is all zeros has no label (an unlabeled image of a
        semi-supervised batch): with one target row per example, such rows are left out of
        the metrics, so a training accuracy counts the labeled examples only.
        """
        _, policy_out, _ = self._split_outputs(y_pred)
        if isinstance(y, Mapping) and "policy" in y and policy_out is not None:
            target = y["policy"]
            if len(target.shape) == 2 and len(policy_out.shape) == 2:
                labeled = tf.reduce_any(tf.not_equal(target, 0), axis=-1)
                target = tf.boolean_mask(target, labeled)
                policy_out = tf.boolean_mask(policy_out, labeled)
                sample_weight = _per_sample_weight(sample_weight)
                if sample_weight is not None:
                    sample_weight = tf.boolean_mask(sample_weight, labeled)
            return super().compute_metrics(x, target, policy_out, sample_weight)
        return self.get_metrics_result()

    @property
    def has_mask_output(self) -> bool:
        """Whether the model has a ``"mask"`` output (for ``masked_self_loss=True``)."""
        return isinstance(self.declared_outputs, Mapping) and "mask" in self.declared_outputs

    # --------------------------------------------------------------------------- serving
    def serving_signatures(self, generate_length: int = 32, temperature: float = 1.0,
                           top_k: int | None = None) -> dict[str, ServingSignature]:
        """The endpoints an export writes: ``serving_default`` and ``serve``.

        Both take the model's named inputs and return float32 ``"self"`` and ``"policy"``.
        The generation arguments are for models that also serve ``generate``.
        """
        return predict_signatures(self, input_specs(self), self_policy_outputs)

    # ------------------------------------------------------------------------ entry points
    def make_train_function(self, force: bool = False):
        """Keras's train function; first freezes the KL reference if none is set yet."""
        self._ensure_reference()
        return super().make_train_function(force)

    def make_test_function(self, force: bool = False):
        """Keras's test function; first freezes the KL reference if none is set yet."""
        self._ensure_reference()
        return super().make_test_function(force)

    def _ensure_reference(self) -> None:
        if getattr(self, "kl_beta", 0.0) and not self.has_reference and self.built:
            self.set_reference()

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None:
            # Keras would build the optimizer and metrics inside the first trace, which
            # is then traced again (keras_selfevo.training.first_trace).
            spec = first_trace.data_structure(iterator, data_batch)
            if spec is not None:
                self._symbolic_build(data_batch=spec)
            return None
        # Keras averages the first distributed batch over replicas with strategy.reduce to
        # learn the data's structure, which MultiWorkerMirroredStrategy cannot do eagerly on
        # per-replica tensors. The first local replica's batch has the same structure.
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: (strategy.experimental_local_results(v)[0]
                               if isinstance(v, tf.distribute.DistributedValues) else v),
                    next(batches),
                )
                break
        return super()._maybe_symbolic_build(data_batch=data_batch)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """``keras.Model.fit`` with input checks and a stop on non-finite loss.

        Inputs are checked before any update they would cause (NumPy arrays at once, other
        inputs batch by batch); a bad input raises ``ValueError`` naming it.
        """
        with input_errors_as_value_errors():
            x = self._validated(x, y)
            if isinstance(validation_data, tf.data.Dataset):
                validation_data = self._validated(validation_data, None)
            elif isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
                self._validated(validation_data[0], validation_data[1])
            callbacks = [StopOnNonFinite(), *(callbacks or [])]  # first: see its docstring
            return super().fit(
                x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                callbacks=callbacks, validation_split=validation_split,
                validation_data=validation_data, shuffle=shuffle, class_weight=class_weight,
                sample_weight=sample_weight, initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                validation_batch_size=validation_batch_size, validation_freq=validation_freq,
            )

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """``keras.Model.evaluate`` with the same input checks as :meth:`fit`."""
        with input_errors_as_value_errors():
            return super().evaluate(self._validated(x, y), y, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        """``keras.Model.train_on_batch`` with the input checks of :meth:`fit`."""
        with input_errors_as_value_errors():
            return super().train_on_batch(self._validated(x, y), y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        """``keras.Model.test_on_batch`` with the input checks of :meth:`fit`."""
        with input_errors_as_value_errors():
            return super().test_on_batch(self._validated(x, y), y, *args, **kwargs)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class FunctionalSelfEvolvingModel(SelfEvolvingModel, Functional):
    """A :class:`SelfEvolvingModel` built from ``inputs`` and ``outputs``.

    ``SelfEvolvingModel(inputs=..., outputs=...)`` returns one. It exists as its own class
    because ``keras.Model.__init__`` would otherwise rewrite ``SelfEvolvingModel``'s base
    classes to ``Functional`` for the rest of the process, breaking subclassed models.

    Args:
        inputs: The model's ``keras.Input`` tensors.
        outputs: A dict ``{"self": ..., "policy": ..., "mask"?: ..., "self_target"?: ...}``
            or one tensor.
        name: Model name.
        **kwargs: Passed on to ``Functional``.
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, **kwargs):
        # keras.Model.__init__ minus its class-hierarchy rewrite: the backend trainer's
        # set-up, then the functional graph.
        keras.Model.__bases__[0].__init__(self)
        Functional.__init__(self, inputs, outputs, name=name, **kwargs)
