"""A language model's serving endpoints: scores on token ids, and sampling on ids or text.

``generate`` and ``generate_text`` take the sampling settings as inputs, one value per row of
which the first row's drives the batch (so TF Serving's row format works): ``seed`` (int32),
``length`` (int32, 1 to the maximum chosen at export), ``temperature`` (float32, 0 is greedy),
``top_k`` (int32, 0 keeps every token) and ``top_p`` (float32, 1 keeps every token).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import text
from keras_selfevo.training.serving import (
    ServingSignature,
    predict_signatures,
    self_policy_outputs,
)
from keras_selfevo.zoo import decoding

SETTINGS = (tf.TensorSpec([None], tf.int32, name="seed"),
            tf.TensorSpec([None], tf.int32, name="length"),
            tf.TensorSpec([None], tf.float32, name="temperature"),
            tf.TensorSpec([None], tf.int32, name="top_k"),
            tf.TensorSpec([None], tf.float32, name="top_p"))


# The example prompts of both sampling signatures are this many tokens long (for text, <bos>
# and 4 characters), so the export's check traces one reference sampling loop for the two.
EXAMPLE_PROMPT_TOKENS = 5


def _example_settings(max_length: int):
    """Example values of the sampling inputs, for an export's check."""

    def examples(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        def rows(value, dtype):
            return np.full([batch], value, dtype)

        return {"seed": rng.integers(0, 2**31 - 1, size=[batch]).astype(np.int32),
                "length": rows(max(1, max_length - 1), np.int32),
                "temperature": rows(0.8, np.float32), "top_k": rows(5, np.int32),
                "top_p": rows(0.9, np.float32)}

    return examples


def _reference_settings(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """The first row's settings as :meth:`LanguageModel.generate_ids` takes them."""
    top_k, top_p = int(inputs["top_k"][0]), float(inputs["top_p"][0])
    return {"length": int(inputs["length"][0]), "temperature": float(inputs["temperature"][0]),
            "top_k": top_k or None, "top_p": top_p if top_p < 1 else None,
            "seed": tf.constant([int(inputs["seed"][0]), 0], tf.int32)}


def language_signatures(model: Any, max_length: int) -> dict[str, ServingSignature]:
    """``serving_default`` / ``serve`` on token ids, ``generate`` and ``generate_text``.

    Args:
        model: A :class:`~keras_selfevo.zoo.LanguageModel`.
        max_length: The most tokens a ``generate`` request may ask for.
    """
    _checks.positive_int(max_length, "generate_length")
    signatures = predict_signatures(
        model, [tf.TensorSpec([None, None], tf.int32, name="tokens")], self_policy_outputs)

    def generate(prompt, seed, length, temperature, top_k, top_p):
        count = length[0]
        with tf.control_dependencies([
                tf.debugging.assert_positive(count, message="`length` must be ≥ 1"),
                tf.debugging.assert_less_equal(
                    count, max_length,
                    message=f"`length` must be at most {max_length} (chosen at export)")]):
            stream = tf.stack([seed[0], tf.constant(0, tf.int32)])
        # Not compiled with XLA: the export runs where TF Serving's own kernels do.
        return {"tokens": decoding.sample_loop(model, prompt, count, max_length, temperature[0],
                                               top_k[0], top_p[0], stream)}

    def reference(inputs: dict) -> dict:
        settings = _reference_settings(inputs)
        return {"tokens": model.generate_ids(inputs["prompt"], settings.pop("length"),
                                             jit_compile=False, **settings).numpy()}

    settings = _example_settings(max_length)

    def examples(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        low = len(text.SPECIAL_TOKENS) if model.vocab_size > len(text.SPECIAL_TOKENS) else 0
        prompt = rng.integers(low, model.vocab_size, size=[batch, EXAMPLE_PROMPT_TOKENS])
        return {"prompt": prompt.astype(np.int32), **settings(rng, batch)}

    signatures["generate"] = ServingSignature(
        generate, [tf.TensorSpec([None, None], tf.int32, name="prompt"), *SETTINGS], reference,
        examples=examples)
    if model.vocabulary is not None:
        signatures["generate_text"] = _text_signature(model, generate, max_length)
    return signatures


def _text_signature(model: Any, generate, max_length: int) -> ServingSignature:
    characters = list(model.vocabulary)
    first_id = len(text.SPECIAL_TOKENS)
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(characters), tf.range(first_id, first_id + len(characters))), -1)
    # id -> character; the special tokens print as nothing.
    strings = tf.constant([""] * first_id + characters)

    def generate_text(prompt, seed, length, temperature, top_k, top_p):
        chars = tf.strings.unicode_split(prompt, "UTF-8")
        ids = tf.ragged.map_flat_values(table.lookup, chars).to_tensor(default_value=0)
        tf.debugging.assert_non_negative(
            ids, message="`prompt` holds characters outside the model's vocabulary")
        ids = tf.concat([tf.fill([tf.shape(ids)[0], 1], text.BOS), ids], 1)
        tokens = generate(ids, seed, length, temperature, top_k, top_p)["tokens"]
        ended = tf.cumsum(tf.cast(tf.logical_or(tokens == text.EOS, tokens == text.PAD)
                                  & (tf.range(tf.shape(tokens)[1]) > 0), tf.int32), 1) > 0
        pieces = tf.where(ended, "", tf.gather(strings, tokens))
        return {"text": tf.strings.reduce_join(pieces, axis=1)}

    def reference(inputs: dict) -> dict:
        prompts = [p.decode() if isinstance(p, bytes) else str(p) for p in inputs["prompt"]]
        settings = _reference_settings(inputs)
        tokens = model.generate_ids(model.encode_prompts(prompts), settings.pop("length"),
                                    jit_compile=False, **settings).numpy()
        return {"text": np.array([t.encode() for t in text.decode(tokens, model.vocabulary)],
                                 dtype=object)}

    examples = _example_settings(max_length)

    def text_examples(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        # One length for the whole batch; with <bos>, EXAMPLE_PROMPT_TOKENS tokens.
        prompt = "".join(rng.choice(characters, EXAMPLE_PROMPT_TOKENS - 1))
        return {"prompt": np.array([prompt] * batch, dtype=object), **examples(rng, batch)}

    return ServingSignature(generate_text, [tf.TensorSpec([None], tf.string, name="prompt"),
                                            *SETTINGS], reference, resources=(table,),
                            examples=text_examples)
