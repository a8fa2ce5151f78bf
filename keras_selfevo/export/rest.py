"""Answer a TF Serving REST ``predict`` request without a server (request-format tests)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf


def _json_ready(value: np.ndarray) -> Any:
    return value.tolist()


def serving_request(saved_model: str | Any, body: str | Mapping) -> dict[str, Any]:
    """Answer a TF Serving REST ``predict`` request body as the server would.

    Accepts the row form ``{"signature_name"?: ..., "instances": [...]}`` (each instance a
    dict of named inputs, or a bare value when the signature has one input) and the columnar
    form ``{"inputs": {...} or value}``. Returns ``{"predictions": [...]}`` (rows: a dict
    per instance when there are several outputs) or ``{"outputs": ...}`` (columns), or
    ``{"error": message}`` for a bad request, as TF Serving does (with HTTP status 400).

    Args:
        saved_model: A version folder, or a ``tf.saved_model.load`` result.
        body: The request body, as JSON text or a parsed dict.
    """
    loaded = tf.saved_model.load(saved_model) if isinstance(saved_model, str) else saved_model
    try:
        request = json.loads(body) if isinstance(body, str) else dict(body)
    except json.JSONDecodeError as error:
        return {"error": f"JSON Parse error: {error}"}
    name = request.get("signature_name", "serving_default")
    if name not in loaded.signatures:
        return {"error": f"Serving signature name: \"{name}\" not found in signature def"}
    signature = loaded.signatures[name]
    specs = signature.structured_input_signature[1]
    if ("instances" in request) == ("inputs" in request):
        return {"error": "Request must have exactly one of \"instances\" (row format) or "
                         "\"inputs\" (columnar format)"}
    try:
        if "instances" in request:
            rows = request["instances"]
            if not isinstance(rows, list) or not rows:
                return {"error": "\"instances\" must be a non-empty list"}
            if len(specs) == 1 and not isinstance(rows[0], Mapping):
                rows = [{next(iter(specs)): row} for row in rows]
            columns = {key: [row[key] for row in rows] for key in specs}
        else:
            given = request["inputs"]
            columns = dict(given) if isinstance(given, Mapping) else {next(iter(specs)): given}
        missing = set(specs) - set(columns)
        if missing:
            return {"error": f"Missing input(s) {sorted(missing)}; the signature takes "
                             f"{sorted(specs)}"}
        tensors = {}
        for key, spec in specs.items():
            value = np.asarray(columns[key])
            if not spec.shape.is_compatible_with(value.shape):
                return {"error": f"Input '{key}' has shape {list(value.shape)}; the signature "
                                 f"expects {spec.shape.as_list()} (None: any size)"}
            tensors[key] = tf.constant(value, dtype=spec.dtype)
        outputs = {k: v.numpy() for k, v in signature(**tensors).items()}
    except (KeyError, ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
        return {"error": " ".join(str(error).split())}
    if "instances" in request:
        if len(outputs) == 1:
            return {"predictions": _json_ready(next(iter(outputs.values())))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{k: _json_ready(v[i]) for k, v in outputs.items()}
                                for i in range(count)]}
    if len(outputs) == 1:
        return {"outputs": _json_ready(next(iter(outputs.values())))}
    return {"outputs": {k: _json_ready(v) for k, v in outputs.items()}}
