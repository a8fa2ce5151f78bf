"""The signatures an export writes: the model's own, or a default for plain Keras models.

A model that declares ``serving_signatures(**generation)`` (every
:class:`~keras_selfevo.SelfEvolvingModel`, the zoo's language models) is exported with those.
Any other Keras model gets ``serving_default`` and ``serve`` with named float32 outputs:
``"logits"`` and ``"probabilities"`` for a classifier (a last ``Dense`` layer with more than
one unit and a linear or softmax activation), ``"predictions"`` otherwise.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo.training.serving import ServingSignature, input_specs, predict_signatures


def _is_classifier(model: keras.Model) -> bool:
    last = model.layers[-1] if getattr(model, "layers", None) else None
    return (isinstance(last, keras.layers.Dense) and last.units > 1
            and keras.activations.serialize(last.activation) in ("linear", "softmax"))


def named_outputs(model: keras.Model, raw: Any) -> dict[str, tf.Tensor]:
    """A plain model's serving outputs (float32) from what it returned."""
    if not _is_classifier(model):
        return {"predictions": tf.cast(raw, tf.float32)}
    raw = tf.cast(raw, tf.float32)
    if keras.activations.serialize(model.layers[-1].activation) == "softmax":
        return {"probabilities": raw, "logits": tf.math.log(tf.maximum(raw, 1e-30))}
    return {"logits": raw, "probabilities": tf.nn.softmax(raw, axis=-1)}


def serving_signatures(model: keras.Model,
                       generate_length: int = 32) -> dict[str, ServingSignature]:
    """The model's declared signatures, or the default ones of a plain Keras model.

    ``generate_length``: for models that sample, the most tokens a request may ask for.
    """
    declared = getattr(model, "serving_signatures", None)
    if callable(declared):
        return declared(generate_length=generate_length)
    # Looked up at call time, so the serving graph and the reference share one definition.
    return predict_signatures(model, input_specs(model), lambda raw: named_outputs(model, raw))


def sample_inputs(model: keras.Model, batch: int = 3, time: int = 6, seed: int = 0,
                  signatures: dict[str, ServingSignature] | None = None,
                  ) -> dict[str, dict[str, np.ndarray]]:
    """A random batch for each signature's inputs: floats in [0, 1], valid token ids.

    A signature's own ``examples`` give the inputs it names. ``signatures``: the ones to
    feed (default: the model's, built here).
    """
    rng = np.random.default_rng(seed)
    vocab = int(getattr(model, "vocab_size", 2) or 2)
    result = {}
    for name, signature in (signatures or serving_signatures(model)).items():
        arrays = dict(signature.examples(rng, batch)) if signature.examples else {}
        for spec in signature.input_specs:
            shape = [batch] + [time if d is None else d for d in spec.shape[1:]]
            if spec.name in arrays:
                continue
            if spec.dtype == tf.string:
                characters = list(getattr(model, "vocabulary", None) or "ab")
                arrays[spec.name] = np.array(["".join(rng.choice(characters, time))
                                              for _ in range(int(np.prod(shape)))],
                                             dtype=object).reshape(shape)
            elif spec.dtype.is_floating:
                arrays[spec.name] = rng.uniform(size=shape).astype(np.float32)
            else:
                arrays[spec.name] = rng.integers(3 if vocab > 3 else 0, vocab, size=shape).astype(
                    spec.dtype.as_numpy_dtype)
        result[name] = arrays
    return result
