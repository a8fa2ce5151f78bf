"""What a model declares for serving: its signatures, each with a reference to verify it.

A model with a ``serving_signatures(**generation)`` method (``SelfEvolvingModel``, the zoo's
language models) returns a dict of :class:`ServingSignature`; :mod:`keras_selfevo.export`
writes them into a SavedModel and checks each one, in a fresh process, against its
``reference``: the same outputs computed by the model's own API (``predict``, ``generate``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import keras_internals

NamedOutputs = Callable[[Any], dict[str, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class ServingSignature:
    """One serving endpoint.

    Attributes:
        fn: A function of the named input tensors returning a dict of float32 / int tensors.
        input_specs: Named ``tf.TensorSpec`` of its inputs (batch size free).
        reference: The same outputs computed eagerly by the model's own API, from a dict of
            NumPy inputs keyed by spec name.
        resources: TensorFlow resources ``fn`` uses besides the model's variables (lookup
            tables), which the export must save with it.
        examples: ``examples(rng, batch)``: valid values of the inputs that random ones
            would not give (settings in a range, one prompt length), by name; an export's
            check feeds them (random values for the other inputs).
    """

    fn: Callable[..., dict[str, tf.Tensor]]
    input_specs: list[tf.TensorSpec]
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    resources: tuple = ()
    examples: Callable[[np.random.Generator, int], dict[str, np.ndarray]] | None = None


def input_specs(model: keras.Model) -> list[tf.TensorSpec]:
    """Named specs of the model's ``keras.Input`` tensors, floats as float32, batch free."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            f"`model` {model.name!r} has no symbolic inputs: build it from keras.Input "
            "(functional or Sequential) before exporting it."
        )
    specs = []
    for tensor in inputs:
        dtype = tf.as_dtype(tensor.dtype)
        dtype = tf.float32 if dtype.is_floating else dtype
        name = tensor.name.split(":")[0] or f"input_{len(specs)}"
        specs.append(tf.TensorSpec([None, *tensor.shape[1:]], dtype, name=name))
    return specs


def _call_inputs(model: keras.Model, specs: list[tf.TensorSpec], args: tuple) -> Any:
    """The model's inputs from the signature's: one tensor, a list, or a dict by name."""
    if isinstance(keras_internals.declared_inputs(model), Mapping):
        return {spec.name: arg for spec, arg in zip(specs, args)}
    return args[0] if len(specs) == 1 else list(args)


def self_policy_outputs(raw: Any) -> dict[str, tf.Tensor]:
    """``"self"`` and ``"policy"`` as float32 (one output serves as both)."""
    if isinstance(raw, Mapping):
        outputs = {key: raw[key] for key in ("self", "policy") if key in raw}
    else:
        outputs = {"self": raw, "policy": raw}
    return {key: tf.cast(value, tf.float32) for key, value in outputs.items()}


def predict_signatures(model: keras.Model, specs: list[tf.TensorSpec],
                       named: NamedOutputs) -> dict[str, ServingSignature]:
    """``serving_default`` and ``serve``: ``named(model(inputs))``, checked against predict."""

    def serve(*args):
        return named(model(_call_inputs(model, specs, args), training=False))

    def reference(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = tuple(inputs[spec.name] for spec in specs)
        raw = model.predict(_call_inputs(model, specs, args), verbose=0)
        return {key: np.asarray(value) for key, value in named(raw).items()}

    signature = ServingSignature(serve, specs, reference)
    return {"serving_default": signature, "serve": signature}
