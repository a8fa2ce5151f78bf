"""Every use of Keras's private API, in one place.

Written for Keras 3.15 (TensorFlow backend). A Keras upgrade is one file to read:
``tests/test_keras_internals.py`` fails, naming the piece, when one of these is gone.

What the package needs that Keras does not offer publicly:

- a functional model of its own class (:data:`Functional`, :func:`functional_init_arguments`,
  :func:`init_backend_trainer`): ``keras.Model.__init__`` would rewrite the class's bases;
- its own compile settings in ``.keras`` files (:func:`set_compile_config`) and its own
  loss logs in place of Keras's single loss tracker (:func:`loss_tracker`);
- the layers inside a model (:func:`sublayers`) and a functional model's output structure
  (:func:`declared_outputs`);
- state built before the first trace (:class:`FirstTraceHooks`);
- exact second derivatives through Keras's normalization layers (:func:`exact_moments`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import nn as _backend_nn
from keras.src.models.functional import Functional
from keras.src.models.model import functional_init_arguments
from keras.src.saving import serialization_lib
from keras.src.utils import tracking

WRITTEN_FOR = "3.15"

__all__ = [
    "FirstTraceHooks",
    "Functional",
    "WRITTEN_FOR",
    "compile_config",
    "declared_inputs",
    "declared_outputs",
    "exact_moments",
    "functional_init_arguments",
    "init_backend_trainer",
    "loss_tracker",
    "no_automatic_dependency_tracking",
    "set_compile_config",
    "sublayers",
]

# Like keras.Model.compile: trackers made inside are not layer state (a subclassed model may
# already be built and its state locked).
no_automatic_dependency_tracking = tracking.no_automatic_dependency_tracking


def init_backend_trainer(model: keras.Model) -> None:
    """``keras.Model.__init__`` minus its class-hierarchy rewrite: the backend trainer only."""
    keras.Model.__bases__[0].__init__(model)


def compile_config(model: keras.Model) -> dict[str, Any]:
    """The arguments Keras recorded for ``model.compile`` (what ``.keras`` files keep)."""
    return dict(model._compile_config.config)


def set_compile_config(model: keras.Model, config: dict[str, Any]) -> None:
    """Replace the recorded compile arguments (``get_compile_config`` returns them)."""
    model._compile_config = serialization_lib.SerializableDict(**config)


def loss_tracker(model: keras.Model) -> keras.metrics.Metric | None:
    """The ``Mean`` tracker of ``loss`` that ``compile`` makes."""
    return getattr(model, "_loss_tracker", None)


def sublayers(model: keras.layers.Layer, include_self: bool = False) -> list:
    """Every layer inside ``model``, nested ones included."""
    return list(model._flatten_layers(include_self=include_self))


def declared_outputs(model: keras.Model) -> Any:
    """The outputs a functional model was built with (a dict or one tensor), else None."""
    return getattr(model, "_outputs_struct", None)


def declared_inputs(model: keras.Model) -> Any:
    """The inputs a functional model was built with (a dict, a list or one tensor), else None."""
    return getattr(model, "_inputs_struct", None)


class FirstTraceHooks:
    """Build the optimizer and compiled metrics before the first trace of a step.

    Keras builds them inside the first trace of the train function when no distribution
    strategy is set, and ``tf.function`` traces a function that created variables a second
    time. A model whose step is costly to trace (a meta-step with second-order gradients,
    a Transformer) mixes this class in before ``keras.Model`` and implements
    :meth:`build_before_first_trace`.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return self.build_before_first_trace(iterator, data_batch)

    def build_before_first_trace(self, iterator: Any, data_batch: Any) -> Any:
        """Build the optimizer and compiled metrics from the data's structure.

        Without a strategy, from the specs of the data (nothing is consumed). Under a
        strategy, as Keras does, from the first local replica's batch: Keras would average
        the first distributed batch over replicas with ``strategy.reduce`` to learn its
        structure, which ``MultiWorkerMirroredStrategy`` cannot do eagerly on per-replica
        tensors, and the first local replica's batch has the same structure.
        """
        strategy = self.explicit_strategy
        if strategy is None:
            spec = self.data_structure(iterator, data_batch)
            if spec is not None:
                self.symbolic_build(spec)
            return None
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: (strategy.experimental_local_results(v)[0]
                               if isinstance(v, tf.distribute.DistributedValues) else v),
                    next(batches),
                )
                break
        return self.keras_build_before_first_trace(data_batch=data_batch)

    def keras_build_before_first_trace(self, iterator: Any = None, data_batch: Any = None):
        """What Keras itself does before the first trace."""
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def symbolic_build(self, data_structure: Any) -> None:
        """Build the optimizer and compiled metrics from one batch's structure."""
        self._symbolic_build(data_batch=data_structure)

    @property
    def explicit_strategy(self) -> tf.distribute.Strategy | None:
        """The strategy the model was made under, or None outside any strategy scope."""
        return self._distribute_strategy

    @staticmethod
    def data_structure(iterator: Any = None, data_batch: Any = None) -> Any:
        """The structure of one batch, or None when neither argument tells it.

        ``data_batch`` itself, else the specs of the data Keras's epoch ``iterator`` reads
        (nothing is consumed from it).
        """
        if data_batch is not None:
            return data_batch
        adapter = getattr(iterator, "data_adapter", None)
        return adapter.get_tf_dataset().element_spec if adapter is not None else None


@contextlib.contextmanager
def exact_moments() -> Iterator[None]:
    """Keras normalization layers traced here keep second derivatives exact.

    ``tf.nn.moments``, which Keras's LayerNormalization and BatchNormalization call, computes
    the variance around ``stop_gradient(mean)``: the value and the first derivative are
    exact, but the second derivative loses the mean's term (``-11ᵀ/n``), so MAML's
    meta-gradient through such layers was wrong (by 0.24% through a small gpt, by half
    through a small LayerNorm MLP). Inside this context the variance is taken around the
    mean itself. (:class:`~keras_selfevo.layers.FusedBatchNormalization` needs no such
    fix: in training its fused kernel's registered second derivative is exact.)
    """
    original = _backend_nn._compute_moments

    def moments(x, axes, keepdims):
        mean = tf.reduce_mean(x, axes, keepdims=True)
        variance = tf.reduce_mean(tf.square(x - mean), axes, keepdims=True)
        if not keepdims:
            mean, variance = tf.squeeze(mean, axes), tf.squeeze(variance, axes)
        return mean, variance

    _backend_nn._compute_moments = moments
    try:
        yield
    finally:
        _backend_nn._compute_moments = original
