"""SelfEvolvingModel: one train step for ``alpha * L_self + (1 - alpha) * L_reinforce``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal import keras_internals
from keras_selfevo.distribute import multi_worker_logs
from keras_selfevo.losses.reinforce_loss import ReinforceLoss, get_reinforce_loss
from keras_selfevo.losses.reward_weighting import RewardWeighting, get_reward_weighting
from keras_selfevo.losses.self_loss import NextTokenSelfLoss, SelfLoss, get_self_loss
from keras_selfevo.training import objective
from keras_selfevo.training.alpha_schedules import AlphaSchedule, get_alpha
from keras_selfevo.training.input_checks import InputChecks
from keras_selfevo.training.non_finite import StopOnNonFinite, loss_for_logs, weights_are_finite
from keras_selfevo.training.reference import ReferencePolicy
from keras_selfevo.training.serving import (
    ServingSignature,
    input_specs,
    predict_signatures,
    self_policy_outputs,
)
from keras_selfevo.training.step_means import StepMeans


def _times_no_nan(gradient: Any, keep: tf.Tensor) -> Any:
    """``gradient * keep`` with ``0 * NaN = 0`` (dense or ``IndexedSlices``)."""
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        values = tf.math.multiply_no_nan(gradient.values, tf.cast(keep, gradient.dtype))
        return tf.IndexedSlices(values, gradient.indices, gradient.dense_shape)
    return tf.math.multiply_no_nan(gradient, tf.cast(keep, gradient.dtype))


@keras.saving.register_keras_serializable(package="keras_selfevo")
class SelfEvolvingModel(InputChecks, keras_internals.FirstTraceHooks, keras.Model):
    """A Keras model trained on ``L = alpha * L_self + (1 - alpha) * L_reinforce``.

    Build it functionally, ``SelfEvolvingModel(inputs=x, outputs={"self": s, "policy": p})``,
    or subclass it with a ``call`` returning such a dict (one output serves both terms; an
    optional ``"mask"`` output from :class:`~keras_selfevo.layers.RandomMasking` lets the
    self-loss count masked elements only; an optional ``"self_target"`` output is the self
    target when ``y`` has none, held constant, e.g. the model's own prediction on a clean
    view for a consistency self-loss). ``L_self`` is binary cross-entropy against
    ``y["self"]`` (or the input itself), or the next-token log-likelihood
    (:mod:`keras_selfevo.losses.self_loss`); ``L_reinforce`` the reward-weighted squared
    error of the ``"policy"`` output toward ``y["policy"]``. Both are means over the global
    batch under ``tf.distribute``; bad inputs raise ``ValueError`` before any update and a
    non-finite step applies no gradient. The README's "The objective" section gives the
    data format and every guarantee.

    A subclass declares its own ``compile`` defaults with the class attributes
    :attr:`default_alpha`, :attr:`default_self_loss`, :attr:`self_output_is_logits` and
    :attr:`default_self_ignore_class` (the zoo's language models do).

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

    #: ``compile``'s ``alpha`` when none is given.
    default_alpha: float = 0.5
    #: ``compile``'s ``self_loss`` when none is given.
    default_self_loss: str | SelfLoss = "binary_crossentropy"
    #: Whether the ``"self"`` output holds logits (``compile``'s ``self_from_logits``).
    self_output_is_logits: bool = False
    #: The target id the next-token self-loss ignores when ``compile`` gives none.
    default_self_ignore_class: int | None = None
    #: ``compile``'s ``reinforce_loss`` when none is given.
    default_reinforce_loss: str | ReinforceLoss = "squared"

    def __new__(cls, *args, **kwargs):
        # Built from inputs and outputs, the model is a FunctionalSelfEvolvingModel, as
        # keras.Model(inputs, outputs) is a Functional.
        if cls is SelfEvolvingModel and keras_internals.functional_init_arguments(args, kwargs):
            return keras.Model.__new__(FunctionalSelfEvolvingModel, *args, **kwargs)
        return super().__new__(cls, *args, **kwargs)

    @keras_internals.no_automatic_dependency_tracking
    def compile(
        self,
        optimizer: str | keras.optimizers.Optimizer = "adam",
        alpha: float | AlphaSchedule | Callable[[tf.Tensor], tf.Tensor] | None = None,
        reward_weighting: str | RewardWeighting | Callable[[tf.Tensor], tf.Tensor] = "raw",
        self_from_logits: bool | None = None,
        masked_self_loss: bool = False,
        self_loss: str | SelfLoss | None = None,
        self_ignore_class: int | None = None,
        kl_beta: float = 0.0,
        reinforce_loss: str | ReinforceLoss | None = None,
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
                ``CosineAlpha``) or a callable of the optimizer step (default:
                :attr:`default_alpha`). With a float of exactly 1 (or 0) the other term
                is not computed and its targets are not needed.
            reward_weighting: ``"raw"`` (w = r, r ≥ 0), ``"normalized"``, ``"awr"``,
                ``"filter"`` (batch median), ``"grpo"``, ``"rloo"``, a
                :class:`~keras_selfevo.losses.RewardWeighting`, or a callable ``r -> w``.
            self_from_logits: The ``"self"`` output holds logits, not probabilities
                (default: :attr:`self_output_is_logits`).
            masked_self_loss: Count only masked elements in ``L_self``; needs a ``"mask"``
                output. Where a batch has no masked element, a training step has no
                self-loss and evaluation counts every element (masking is off there).
            self_loss: ``"binary_crossentropy"`` (targets in [0, 1], the shape of the
                ``"self"`` output), ``"sparse_categorical_crossentropy"`` (the next-token
                log-likelihood: integer targets ``[batch, time]`` against scores
                ``[batch, time, vocab]``) or a :class:`~keras_selfevo.losses.SelfLoss`
                (default: :attr:`default_self_loss`).
            self_ignore_class: With the next-token self-loss, a target id that does not
                count (padding), e.g. ``keras_selfevo.data.text.PAD`` (default:
                :attr:`default_self_ignore_class`).
            kl_beta: Weight of a reference anchor ``kl_beta * KL(policy || reference)``
                added to the loss (and logged as ``kl``): the exact KL divergence over the
                last axis of the ``"policy"`` output (a probability distribution, e.g. the
                next-token softmax of a language model), averaged over its positions and
                the global batch, against the policy of frozen reference weights
                (:meth:`set_reference`; by default the weights when ``fit`` first runs).
            reinforce_loss: ``"squared"`` (the reward-weighted squared error),
                ``"log_likelihood"`` (the reward-weighted ``-log pi(a | x)`` of a categorical
                policy: the policy gradient; with reward 1 the cross-entropy) or a
                :class:`~keras_selfevo.losses.ReinforceLoss` (e.g.
                ``LogLikelihoodReinforceLoss(normalize="token", clip_epsilon=0.2)``);
                default: :attr:`default_reinforce_loss`.
            metrics: Metrics of the ``"policy"`` output against ``y["policy"]``.
            weighted_metrics: Same, weighted by ``sample_weight``.
            run_eagerly: As in ``keras.Model.compile``.
            steps_per_execution: As in ``keras.Model.compile``.
            jit_compile: As in ``keras.Model.compile``.
            auto_scale_loss: As in ``keras.Model.compile`` (loss scaling under
                ``mixed_float16``).
        """
        alpha = self.default_alpha if alpha is None else alpha
        self.alpha = get_alpha(alpha)
        self.reward_weighting = get_reward_weighting(reward_weighting)
        self.self_loss = self._resolve_self_loss(self_loss, self_from_logits, self_ignore_class)
        self.reinforce_loss = get_reinforce_loss(
            self.default_reinforce_loss if reinforce_loss is None else reinforce_loss)
        self.masked_self_loss = bool(masked_self_loss)
        self.kl_beta = _checks.number(kl_beta, "kl_beta", 0.0)
        self._check_output_names()
        super().compile(optimizer=optimizer, loss=None, metrics=metrics,
                        weighted_metrics=weighted_metrics, run_eagerly=run_eagerly,
                        steps_per_execution=steps_per_execution, jit_compile=jit_compile,
                        auto_scale_loss=auto_scale_loss)
        names = ("loss", "self_loss", "reinforce_loss", "alpha") + (
            ("kl",) if self.kl_beta else ())
        with self.distribute_strategy.scope():
            self._step_means = StepMeans(names)
        keras_config = keras_internals.compile_config(self)
        del keras_config["loss"], keras_config["loss_weights"]  # fixed by this class
        keras_internals.set_compile_config(self, {
            **keras_config,
            "alpha": alpha,  # as given: a float stays a float in the saved config
            "reward_weighting": self.reward_weighting, "self_loss": self.self_loss,
            "reinforce_loss": self.reinforce_loss, "masked_self_loss": self.masked_self_loss,
            "kl_beta": self.kl_beta, "auto_scale_loss": auto_scale_loss})

    def _resolve_self_loss(self, self_loss: Any, from_logits: bool | None,
                           ignore_class: int | None) -> SelfLoss:
        """``compile``'s self-loss arguments, with the model's defaults for those not given."""
        self_loss = self.default_self_loss if self_loss is None else self_loss
        if ignore_class is None and self_loss == NextTokenSelfLoss.name:
            ignore_class = self.default_self_ignore_class
        return get_self_loss(self_loss,
                             self.self_output_is_logits if from_logits is None else from_logits,
                             ignore_class)

    def compile_from_config(self, config: dict) -> None:
        """Compile with the settings stored by :meth:`get_compile_config` (``.keras`` load)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The loss terms' means (``loss``, ``self_loss``, ...) and the compiled metrics."""
        step_means = getattr(self, "_step_means", None)
        if step_means is None:
            return super().metrics
        tracker = keras_internals.loss_tracker(self)
        return [step_means] + [m for m in super().metrics if m is not tracker]

    # ------------------------------------------------------------------ reference anchor
    def set_reference(self, weights: list | None = None) -> None:
        """Freeze the policy the ``kl_beta`` penalty anchors to.

        Args:
            weights: Values of the model's trainable weights, in their order (``None``:
                their current values). They are copied; they are not saved with the model.
        """
        if self.reference is None:
            # Set outside Keras's tracking: the copy is not part of the model's state.
            object.__setattr__(self, "_reference", ReferencePolicy(self, weights))
        else:
            self.reference.assign(self, weights)

    @property
    def reference(self) -> ReferencePolicy | None:
        """The frozen reference policy of the ``kl_beta`` penalty, once set."""
        return getattr(self, "_reference", None)

    @property
    def has_reference(self) -> bool:
        """Whether :meth:`set_reference` has frozen a reference policy."""
        return self.reference is not None

    # ------------------------------------------------------------------------------ steps
    def _loss_terms(self, x: Any, y: Any, y_pred: Any, sample_weight: Any,
                    training: bool = False) -> objective.LossTerms:
        self._check_targets(x, y)
        self._check_outputs(y_pred)
        return objective.loss_terms(self, x, y or {}, y_pred, sample_weight, training)

    def _update_trackers(self, terms: objective.LossTerms, logged_loss: tf.Tensor) -> None:
        # Each replica holds its share of the global value; the metric sums over replicas.
        replicas = float(tf.distribute.get_replica_context().num_replicas_in_sync)
        values = [logged_loss * replicas, terms.self_loss * replicas,
                  terms.reinforce_loss * replicas, terms.alpha]
        if self.kl_beta:
            values.append(terms.kl * replicas)
        self._step_means.update_state(tf.stack(values), terms.global_batch / replicas)

    def _loss_is_finite(self, terms: objective.LossTerms) -> tf.Tensor:
        """Whether the global loss is finite (the same answer on every replica)."""
        if tf.distribute.get_replica_context().num_replicas_in_sync == 1:
            return tf.math.is_finite(terms.total)
        bad = tf.cast(tf.logical_not(tf.math.is_finite(terms.total)), tf.float32)
        return tf.equal(objective.replica_sum(bad), 0.0)

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
        policy_out = objective.split_outputs(y_pred).policy
        if isinstance(y, Mapping) and "policy" in y and policy_out is not None:
            target = y["policy"]
            if len(target.shape) == 2 and len(policy_out.shape) == 2:
                labeled = tf.reduce_any(tf.not_equal(target, 0), axis=-1)
                target = tf.boolean_mask(target, labeled)
                policy_out = tf.boolean_mask(policy_out, labeled)
                sample_weight = objective.per_sample_weight(sample_weight)
                if sample_weight is not None:
                    sample_weight = tf.boolean_mask(sample_weight, labeled)
            return super().compute_metrics(x, target, policy_out, sample_weight)
        return self.get_metrics_result()

    @property
    def has_mask_output(self) -> bool:
        """Whether the model has a ``"mask"`` output (for ``masked_self_loss=True``)."""
        return isinstance(self.declared_outputs, Mapping) and "mask" in self.declared_outputs

    # --------------------------------------------------------------------------- serving
    def serving_signatures(self, generate_length: int = 256) -> dict[str, ServingSignature]:
        """The endpoints an export writes: ``serving_default`` and ``serve``.

        Both take the model's named inputs and return float32 ``"self"`` and ``"policy"``.
        ``generate_length`` is for models that also serve ``generate``.
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

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        """``keras.Model.fit`` with input checks and a stop on non-finite loss.

        Inputs are checked before any update they would cause (NumPy arrays at once, other
        inputs batch by batch); a bad input raises ``ValueError`` naming it.
        """
        callbacks = [StopOnNonFinite(), *(callbacks or [])]  # first: see its docstring
        return self._checked_call(super().fit, x, y, *args, callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """``keras.Model.evaluate`` with the same input checks as :meth:`fit`."""
        return self._checked_call(super().evaluate, x, y, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        """``keras.Model.train_on_batch`` with the input checks of :meth:`fit`."""
        return self._checked_call(super().train_on_batch, x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        """``keras.Model.test_on_batch`` with the input checks of :meth:`fit`."""
        return self._checked_call(super().test_on_batch, x, y, *args, **kwargs)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class FunctionalSelfEvolvingModel(SelfEvolvingModel, keras_internals.Functional):
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

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, **kwargs: Any):
        keras_internals.init_backend_trainer(self)
        keras_internals.Functional.__init__(self, inputs, outputs, name=name, **kwargs)
