"""MetaLearner: the MAML family on any built Keras model, trained with ``model.fit``."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal import keras_internals
from keras_selfevo.losses.self_loss import NextTokenSelfLoss
from keras_selfevo.training.non_finite import StopOnNonFinite, loss_for_logs, weights_are_finite


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """What sets one algorithm of the family apart.

    Attributes:
        second_order: The outer gradient flows through the inner gradients.
        learned_rates: The inner learning rates are weights trained by the outer loop.
        adapts_named_layers: Only the layers in ``adapt_layers`` adapt in the inner loop.
        outer_step: ``"meta_gradient"`` (differentiate the post-adaptation query loss) or
            ``"reptile"`` (the pseudo-gradient ``theta - theta'``).
    """

    second_order: bool
    learned_rates: bool = False
    adapts_named_layers: bool = False
    outer_step: str = "meta_gradient"


SPECS = {
    "maml": Algorithm(second_order=True),
    "fomaml": Algorithm(second_order=False),
    "metasgd": Algorithm(second_order=True, learned_rates=True),
    "anil": Algorithm(second_order=True, adapts_named_layers=True),
    "reptile": Algorithm(second_order=False, outer_step="reptile"),
}
ALGORITHMS = tuple(SPECS)


def _global_mean(values: tf.Tensor) -> tf.Tensor:
    """The local replica's share of the mean over the global meta-batch.

    Replicas' gradients are summed, so each contributes its local mean divided by the
    number of replicas: exact when a meta-batch splits evenly across replicas, the same
    assumption Keras makes when it scales losses for distribution.
    """
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    return tf.reduce_mean(values, axis=0) / tf.cast(replicas, values.dtype)


@keras.saving.register_keras_serializable(package="keras_selfevo")
class MetaLearner(keras_internals.FirstTraceHooks, keras.Model):
    """Meta-learn the initial weights of ``model`` so that a few gradient steps fit a task.

    The meta-loss of a meta-batch is the mean over its tasks of the query loss after
    adaptation, ``theta' = theta - inner_lr * grad L_support(theta)`` repeated
    ``inner_steps`` times. Fast weights are tensors run through ``model.stateless_call``:
    no variable is assigned inside the inner loop, so the outer gradient flows through it.
    The tasks of a meta-batch run in one graph (``tf.vectorized_map`` or a graph loop), not
    as Python copies; each task's meta-gradient is taken inside it and their mean applied.

    Algorithms:
        ``"maml"``: second order, differentiating through the inner steps.
        ``"fomaml"``: first order (inner gradients treated as constants).
        ``"metasgd"``: a learned inner learning rate per parameter (weights of the learner,
        trained by the outer optimizer and saved with it), second order.
        ``"anil"``: only the layers named in ``adapt_layers`` adapt in the inner loop; all
        layers learn in the outer loop.
        ``"reptile"``: ``inner_steps`` SGD steps on the task's support and query data; the
        outer optimizer receives the pseudo-gradient ``theta - theta'`` (with
        ``SGD(learning_rate=eps)``: ``theta += eps (theta' - theta)``; a learning-rate
        schedule anneals the step).

    BatchNorm uses batch statistics in both the inner and the outer loop (as the MAML
    reference code does); its moving statistics are not updated by meta-training.
    Recurrent layers (GRU, LSTM) are switched to their non-cuDNN implementation
    (``use_cudnn=False``): cuDNN kernels have no second-order gradients.

    Data: ``((support_x, support_y), (query_x, query_y))`` with a leading meta-batch axis,
    e.g. from :func:`keras_selfevo.data.sinusoid_tasks`, or for a language model of the zoo
    from :func:`keras_selfevo.data.text_tasks` (windows of token ids, next ids as targets).

    A model with dict outputs adapts on one of them, ``task_output``. A model may declare its task
    defaults (the zoo's language models: the ``"self"`` logits and the next-token
    log-likelihood) with a ``meta_task()`` method returning ``(output, loss)``.

    Example:
    >>> net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(40, activation="relu"),
    ...                         keras.layers.Dense(1)])
    >>> learner = MetaLearner(net, algorithm="maml", inner_lr=0.01)
    >>> learner.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> tasks = kse.data.sinusoid_tasks(shots=10, queries=10, meta_batch_size=4)
    >>> history = learner.fit(tasks, steps_per_epoch=2, verbose=0)
    >>> x = np.linspace(-5, 5, 10, dtype="float32")[:, None]
    >>> adapted = learner.adapt(x, np.sin(x), steps=5)  # a new model; the learner is unchanged

    Args:
        model: A built Keras model (Sequential, functional or subclassed).
        algorithm: One of ``"maml"``, ``"fomaml"``, ``"metasgd"``, ``"anil"``, ``"reptile"``.
        inner_lr: Inner-loop learning rate (> 0); Meta-SGD's initial rates.
        inner_steps: Inner-loop gradient steps during training (≥ 1).
        loss: The task loss, a Keras loss or its name (default: the model's declared task
            loss, else mean squared error).
        adapt_layers: For ``"anil"``: names of the layers that adapt in the inner loop.
        eval_inner_steps: Inner steps in ``evaluate`` and ``adapt`` (default: ``inner_steps``).
        vectorize: Run a meta-batch's tasks with ``tf.vectorized_map`` (``True``) or a graph
            loop, ``tf.map_fn`` (``False``). ``None``: vectorized unless the model has
            recurrent or convolution layers, which ``vectorized_map`` runs as slow loops.
            Vectorized, with ``compile(jit_compile=True)`` the whole step is one XLA
            program, compiled once (the fastest path for dense networks). Looped,
            ``parallel_tasks`` tasks run at a time and their activations are freed before
            the next (memory of a few tasks, not of the meta-batch).
        task_output: For a model with dict outputs, the output the task loss scores
            (default: the model's declared task output).
        parallel_tasks: In the graph loop (``vectorize=False``), how many tasks run at
            once; memory grows with it (the measurements are in benchmarks/README.md).
        self_loss_weight: Adds this multiple of the model's self-loss to the task loss, in
            the inner and the outer loop: the next-token log-likelihood of the task's own
            inputs, for a model whose ``"self"`` output is next-token logits scored against
            its ``"self_target"`` output (:class:`~keras_selfevo.zoo.TextClassifier`);
            positions holding the model's ``default_self_ignore_class`` are left out.
        train_weights: ``False`` keeps the model's weights as they are and meta-learns only
            Meta-SGD's inner rates (e.g. the rates that adapt a pretrained model best).
        **kwargs: Base ``keras.Model`` arguments.
    """

    def __init__(
        self,
        model: keras.Model,
        algorithm: str = "maml",
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        loss: str | keras.losses.Loss | None = None,
        adapt_layers: list[str] | None = None,
        eval_inner_steps: int | None = None,
        vectorize: bool | None = None,
        task_output: str | None = None,
        parallel_tasks: int = 2,
        self_loss_weight: float = 0.0,
        train_weights: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not isinstance(model, keras.Model) or not model.built or not model.weights:
            raise ValueError(
                "`model` must be a built keras.Model (call it on data or give it an Input "
                f"first); got {model!r}."
            )
        spec = _checks.lookup(SPECS, algorithm, "algorithm")
        _checks.positive_number(inner_lr, "inner_lr")
        _checks.positive_int(inner_steps, "inner_steps")
        _checks.positive_int(parallel_tasks, "parallel_tasks")
        _checks.positive_int(eval_inner_steps, "eval_inner_steps", allow_none=True)
        _checks.number(self_loss_weight, "self_loss_weight", low=0.0)
        if not train_weights and not spec.learned_rates:
            raise ValueError("`train_weights`=False leaves nothing to meta-learn for "
                             f"{algorithm!r}: it is for 'metasgd', which learns its rates.")
        if self_loss_weight and not getattr(model, "self_output_is_logits", False):
            raise ValueError("`self_loss_weight` needs a model whose 'self' output is "
                             "next-token logits beside a 'self_target' output (e.g. a "
                             f"TextClassifier); got {type(model).__name__}.")
        if spec.adapts_named_layers:
            if not adapt_layers:
                raise ValueError("`adapt_layers` must name the layers to adapt for 'anil'.")
            known = {layer.name for layer in keras_internals.sublayers(model)}
            unknown = set(adapt_layers) - known
            if unknown:
                raise ValueError(
                    f"`adapt_layers` names unknown layers {sorted(unknown)}; the model has "
                    f"{sorted(known)}."
                )
        self.model = model
        self.algorithm = algorithm
        self.spec = spec
        self.inner_lr = float(inner_lr)
        self.inner_steps = inner_steps
        declared_output, declared_loss = (model.meta_task() if hasattr(model, "meta_task")
                                          else (None, "mean_squared_error"))
        self.loss_fn = keras.losses.get(declared_loss if loss is None else loss)
        self.task_output = declared_output if task_output is None else task_output
        self._check_output()
        self.adapt_layers = list(adapt_layers) if adapt_layers else None
        self.eval_inner_steps = eval_inner_steps
        self.parallel_tasks = parallel_tasks
        self.self_loss_weight = float(self_loss_weight)
        self.train_weights = bool(train_weights)
        recurrent = [layer for layer in keras_internals.sublayers(model)
                     if isinstance(layer, keras.layers.RNN)]
        for layer in recurrent:
            if hasattr(layer, "use_cudnn"):
                layer.use_cudnn = False
        # vectorized_map turns recurrent layers' while loops and convolution filter
        # gradients into slow while loops; a graph loop over tasks is faster there.
        looped = recurrent or any(isinstance(layer, keras.layers.Conv2D) for layer in
                                  keras_internals.sublayers(model))
        self.vectorize = not looped if vectorize is None else bool(vectorize)
        self._adapted = self._adapted_mask()
        self.inner_lrs = []
        if spec.learned_rates:
            self.inner_lrs = [
                self.add_weight(
                    shape=variable.shape,
                    initializer=keras.initializers.Constant(self.inner_lr),
                    name=f"inner_lr_{index}",
                )
                for index, variable in enumerate(model.trainable_variables)
            ]
        self.built = True

    def _check_output(self) -> None:
        """``task_output`` names one of a functional model's dict outputs (before any work)."""
        outputs = keras_internals.declared_outputs(self.model)
        name = self.task_output
        if name is not None and isinstance(outputs, dict) and name not in outputs:
            raise ValueError(f"`task_output`={name!r} is not an output of the model; it has "
                             f"{sorted(outputs)}.")

    def inner_rates(self, learning_rate: float | None = None) -> list:
        """The inner step's size for each trainable variable of the model, in order.

        Meta-SGD's learned rates (tensors of the variables' shapes), else ``inner_lr``, or
        ``learning_rate`` for every adapted variable when given; 0 for the variables the
        inner loop leaves fixed (ANIL's body).
        """
        count = len(self.model.trainable_variables)
        own = ([learning_rate] * count if learning_rate is not None
               else list(self.inner_lrs) or [self.inner_lr] * count)
        return [rate if flag else 0.0 for rate, flag in zip(own, self._adapted)]

    def _adapted_mask(self) -> list[bool]:
        """Which of the model's trainable variables adapt in the inner loop."""
        if not self.spec.adapts_named_layers:
            return [True] * len(self.model.trainable_variables)
        adapted = {
            id(v)
            for layer in keras_internals.sublayers(self.model)
            if layer.name in self.adapt_layers
            for v in layer.trainable_variables
        }
        return [id(v) in adapted for v in self.model.trainable_variables]

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The wrapped model before adaptation."""
        return self.model(inputs, training=training)

    # ----------------------------------------------------------------------------- inner
    def task_loss(self, weights: list, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, Any]:
        """The task loss of the model run on ``weights`` (tensors), and its predictions.

        Args:
            weights: Values of the model's trainable weights, in order (e.g. fast weights).
            x: One task's inputs.
            y: Their targets.
        """
        non_trainable = [tf.convert_to_tensor(v) for v in self.model.non_trainable_variables]
        with keras_internals.exact_moments():
            pred, _ = self.model.stateless_call(weights, non_trainable, x, training=True)
        extra = self._self_loss(pred) if self.self_loss_weight else 0.0
        if isinstance(pred, dict):
            if self.task_output is None:
                raise ValueError(f"The model returns the outputs {sorted(pred)}: give "
                                 "`task_output`, the one the task loss scores.")
            pred = pred[self.task_output]
        pred = tf.cast(pred, self._dtype)
        # Per-example values, reduced here: Keras Loss objects would also rescale for
        # distribution, and the meta-batch mean below is already over the global batch.
        fn = self.loss_fn.call if isinstance(self.loss_fn, keras.losses.Loss) else self.loss_fn
        return tf.reduce_mean(fn(tf.cast(y, self._dtype), pred)) + extra, pred

    def _self_loss(self, outputs: Any) -> tf.Tensor:
        """``self_loss_weight`` × the mean next-token cross-entropy of the ``"self"`` logits."""
        if not isinstance(outputs, dict) or not {"self", "self_target"} <= set(outputs):
            raise ValueError("`self_loss_weight` needs the model's 'self' and 'self_target' "
                             f"outputs; it returns {type(outputs).__name__}.")
        next_token = NextTokenSelfLoss(
            from_logits=True, ignore_class=getattr(self.model, "default_self_ignore_class", None))
        losses, counted, _ = next_token.terms(outputs["self_target"], outputs["self"])
        counted = tf.ones_like(losses) if counted is None else counted
        mean = tf.reduce_sum(losses * counted) / tf.maximum(tf.reduce_sum(counted), 1.0)
        mean = tf.cast(mean, self._dtype)
        return tf.cast(self.self_loss_weight, self._dtype) * mean

    @property
    def _dtype(self) -> tf.DType:
        """float64 for float64 models, else float32 (also under mixed precision)."""
        variables = self.model.trainable_variables
        return tf.float64 if variables and variables[0].dtype == "float64" else tf.float32

    def fast_weights(self, support_x: tf.Tensor, support_y: tf.Tensor, steps: int,
                     theta: list | None = None, rates: list | None = None) -> list[tf.Tensor]:
        """Weights after ``steps`` inner steps on one task's support set, as tensors.

        ``theta`` (default: the model's weights) and ``rates`` (default: Meta-SGD's rates
        or ``inner_lr``) may be given as tensors to differentiate with respect to them.

        Inside a graph, several steps run as calls of one traced step function: the step and
        its gradients (second-order ones included) are built once rather than once per
        step, which shortens the first meta-step (trace and graph optimisation). The maths
        is the same.
        """
        fast = list(theta if theta is not None else self.model.trainable_variables)
        fast = [tf.convert_to_tensor(w) for w in fast]
        rates = rates or self.inner_lrs or [self.inner_lr] * len(fast)
        rates = [tf.cast(rate, w.dtype) for rate, w in zip(rates, fast)]
        second_order = self.spec.second_order

        def step(fast, rates, support_x, support_y):
            adapted = [w for w, flag in zip(fast, self._adapted) if flag]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(adapted)
                loss, _ = self.task_loss(fast, support_x, support_y)
            grads = iter(tape.gradient(loss, adapted))
            updated = []
            for weight, flag, rate in zip(fast, self._adapted, rates):
                if not flag:
                    updated.append(weight)
                    continue
                grad = next(grads)
                if not second_order:
                    grad = tf.stop_gradient(grad)
                updated.append(weight - rate * grad)
            return updated

        if steps > 1 and not tf.executing_eagerly():
            step = tf.function(step, autograph=False)
        for _ in range(steps):
            fast = step(fast, rates, support_x, support_y)
        return fast

    def _per_task(self, fn, tasks, signature):
        """``fn`` over the tasks of a meta-batch in one graph; ``signature`` for the loop."""
        if self.vectorize:
            return tf.vectorized_map(fn, tasks)
        return tf.map_fn(fn, tasks, parallel_iterations=self.parallel_tasks,
                         fn_output_signature=signature)

    # ----------------------------------------------------------------------------- steps
    def _unpack(self, data: Any) -> tuple[tf.Tensor, ...]:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        try:
            # A dataset element arrives as x=(support), y=(query); train_on_batch(element)
            # as x=(support, query).
            (support_x, support_y), (query_x, query_y) = (x, y) if y is not None else x
        except (TypeError, ValueError):
            raise ValueError(
                "MetaLearner data must be ((support_x, support_y), (query_x, query_y)) with a "
                "leading meta-batch axis."
            ) from None
        for name, inputs, targets in (("support", support_x, support_y),
                                      ("query", query_x, query_y)):
            if (inputs.shape[1] is not None and targets.shape[1] is not None
                    and inputs.shape[1] != targets.shape[1]):
                raise ValueError(f"{name}_x holds {inputs.shape[1]} examples per task but "
                                 f"{name}_y holds {targets.shape[1]}; they must match.")
        if support_x.shape[2:] != query_x.shape[2:]:
            raise ValueError(
                f"support_x {support_x.shape} and query_x {query_x.shape} must have the same "
                "example shape."
            )
        return support_x, support_y, query_x, query_y

    def _query_losses(self, data: Any, steps: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        support_x, support_y, query_x, query_y = self._unpack(data)
        theta = [tf.convert_to_tensor(v) for v in self.model.trainable_variables]

        def task(args):
            sx, sy, qx, qy = args
            fast = self.fast_weights(sx, sy, steps, theta)
            return self.task_loss(fast, qx, qy)

        losses, predictions = self._per_task(
            task, (support_x, support_y, query_x, query_y), (self._dtype, self._dtype))
        return losses, predictions, query_y

    def _per_task_gradient_step(self, data: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Each task's meta-gradient inside the task map, then their mean is applied.

        Differentiating inside the per-task function (rather than through the map) keeps
        the step one XLA program under ``jit_compile`` (the gradient of ``vectorized_map``'s
        wrapping function made XLA recompile at every step), and in the graph loop over
        tasks (``tf.map_fn``, ``parallel_tasks`` at a time) only those tasks' activations
        are alive at once instead of every task's, kept for a backward pass through the
        loop.
        """
        support_x, support_y, query_x, query_y = self._unpack(data)
        theta = [tf.convert_to_tensor(v) for v in self.model.trainable_variables]
        rates = [tf.convert_to_tensor(r) for r in self.inner_lrs]
        sources = (theta if self.train_weights else []) + rates

        def task(args):
            sx, sy, qx, qy = args
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(sources)
                fast = self.fast_weights(sx, sy, self.inner_steps, theta, rates or None)
                loss, predictions = self.task_loss(fast, qx, qy)
                scaled = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled, sources)
            gradients = [tf.zeros_like(s) if g is None else g
                         for s, g in zip(sources, gradients)]
            return loss, predictions, gradients

        signature = (self._dtype, tf.TensorSpec(None, self._dtype),
                     [tf.TensorSpec(s.shape, s.dtype) for s in sources])
        losses, predictions, gradients = self._per_task(
            task, (support_x, support_y, query_x, query_y), signature)
        owners = (list(self.model.trainable_variables) if self.train_weights else []) + list(
            self.inner_lrs)
        by_variable = {id(v): _global_mean(g) for v, g in zip(owners, gradients)}
        variables = self.trainable_variables
        self.optimizer.apply_gradients(
            (by_variable[id(v)], v) for v in variables if id(v) in by_variable)
        return _global_mean(losses), predictions, query_y

    def _reptile_step(self, data: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        support_x, support_y, query_x, query_y = self._unpack(data)
        x = tf.concat([support_x, query_x], axis=1)
        y = tf.concat([support_y, query_y], axis=1)
        theta = [tf.convert_to_tensor(v) for v in self.model.trainable_variables]

        def task(args):
            tx, ty = args
            fast = self.fast_weights(tx, ty, self.inner_steps, theta)
            loss, predictions = self.task_loss(fast, tx, ty)
            return [loss, predictions] + [w - f for w, f in zip(theta, fast)]

        signature = [self._dtype, tf.TensorSpec(None, self._dtype)] + [
            tf.TensorSpec(w.shape, w.dtype) for w in theta]
        outputs = self._per_task(task, (x, y), signature)
        pseudo_gradients = [_global_mean(d) for d in outputs[2:]]
        self.optimizer.apply_gradients(zip(pseudo_gradients, self.model.trainable_variables))
        # Loss and metrics of the adapted weights on the task's own data.
        return _global_mean(outputs[0]), outputs[1], y

    def fit(self, *args, callbacks=None, **kwargs):
        """``keras.Model.fit``, stopped with a clear error if a meta-update diverges.

        ``shuffle`` defaults to False: a task stream's order is its seed's, and Keras would
        only warn that it cannot shuffle a dataset.
        """
        callbacks = [StopOnNonFinite(skipped_update=False), *(callbacks or [])]
        kwargs.setdefault("shuffle", False)
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def build_before_first_trace(self, iterator: Any, data_batch: Any) -> Any:
        """Build the optimizer and the compiled metrics before the first trace.

        (:class:`~keras_selfevo._internal.keras_internals.FirstTraceHooks`: otherwise the
        meta-step, its inner steps and second-order gradients, is traced twice.)
        """
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        metrics = self._compile_metrics
        spec = self.data_structure(iterator, data_batch)
        if metrics is not None and not metrics.built and spec is not None:
            _, _, query_x, query_y = self._unpack(spec)
            examples = keras.KerasTensor((None, *query_x.shape[2:]), query_x.dtype.name)
            targets = keras.KerasTensor((None, *query_y.shape[2:]), query_y.dtype.name)
            predictions = self.model.compute_output_spec(examples, training=False)
            if isinstance(predictions, dict) and self.task_output in predictions:
                predictions = predictions[self.task_output]
            metrics.build(targets, predictions)
        return self.keras_build_before_first_trace(iterator, data_batch)

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        """One meta-update on a meta-batch of tasks.

        The loss is logged as NaN when the update left a non-finite weight, so ``fit``
        stops at that step (:class:`~keras_selfevo.training.StopOnNonFinite`).
        """
        loss, predictions, query_y = self._meta_update(data)
        loss = loss_for_logs(loss, weights_are_finite(self.trainable_variables))
        return self._update_metrics(loss, predictions, query_y)

    def _meta_update(self, data: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Apply one meta-update; return the query loss, predictions and targets."""
        if self.spec.outer_step == "reptile":
            return self._reptile_step(data)
        return self._per_task_gradient_step(data)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        """Post-adaptation query loss and metrics, with ``eval_inner_steps`` inner steps."""
        steps = self.eval_inner_steps or self.inner_steps
        losses, predictions, query_y = self._query_losses(data, steps)
        return self._update_metrics(_global_mean(losses), predictions, query_y)

    def _update_metrics(self, loss, predictions, query_y) -> dict[str, tf.Tensor]:
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        keras_internals.loss_tracker(self).update_state(loss * replicas)
        flat = lambda t: tf.reshape(t, tf.concat([[-1], tf.shape(t)[2:]], 0))  # noqa: E731
        return self.compute_metrics(None, flat(query_y), flat(predictions))

    def task_predictions(self, data: Any, steps: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """Post-adaptation query losses ``[tasks]`` and predictions ``[tasks, queries, ...]``.

        Args:
            data: ``((support_x, support_y), (query_x, query_y))`` with a meta-batch axis.
            steps: Inner steps (default: ``eval_inner_steps`` or ``inner_steps``).
        """
        steps = steps or self.eval_inner_steps or self.inner_steps
        losses, predictions, _ = self._query_losses(data, steps)
        return losses, predictions

    # ----------------------------------------------------------------------------- adapt
    def adapt(self, support_x: Any, support_y: Any, steps: int | None = None) -> keras.Model:
        """A new model of the same architecture holding weights adapted to one task.

        The learner's own weights are not changed.

        Args:
            support_x: The task's support inputs (no meta-batch axis).
            support_y: The task's support targets.
            steps: Inner steps (default: ``eval_inner_steps`` or ``inner_steps``).
        """
        steps = steps or self.eval_inner_steps or self.inner_steps
        _checks.positive_int(steps, "steps")
        if len(support_x) != len(support_y):
            raise ValueError(f"`support_x` holds {len(support_x)} examples but `support_y` "
                             f"{len(support_y)}; they must match.")
        fast = self.fast_weights(tf.convert_to_tensor(support_x),
                                 tf.convert_to_tensor(support_y), steps)
        try:
            clone = keras.models.clone_model(self.model)
        except (ValueError, TypeError, NotImplementedError):
            clone = type(self.model).from_config(self.model.get_config())
        clone(tf.convert_to_tensor(support_x)[:1])
        for variable, value in zip(clone.trainable_variables, fast):
            variable.assign(value)
        for variable, value in zip(clone.non_trainable_variables,
                                   self.model.non_trainable_variables):
            variable.assign(value)
        return clone

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "algorithm": self.algorithm,
            "inner_lr": self.inner_lr,
            "inner_steps": self.inner_steps,
            "loss": keras.saving.serialize_keras_object(self.loss_fn),
            "adapt_layers": self.adapt_layers,
            "eval_inner_steps": self.eval_inner_steps,
            "vectorize": self.vectorize,
            "task_output": self.task_output,
            "parallel_tasks": self.parallel_tasks,
            "self_loss_weight": self.self_loss_weight,
            "train_weights": self.train_weights,
        }

    @classmethod
    def from_config(cls, config: dict) -> MetaLearner:
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
        return cls(**config)
