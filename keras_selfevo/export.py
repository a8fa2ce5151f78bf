r"""Export for serving: SavedModels in TF Serving's layout, verified in a fresh process.

``export_for_serving(model, "serving/mnist_cnn")`` writes ``serving/mnist_cnn/<version>/``
(``saved_model.pb`` + ``variables/``) with the signatures TF Serving reads:

- ``serving_default`` and ``serve``: named inputs (the model's ``Input`` names) → named
  float32 outputs: ``"self"`` and ``"policy"`` for a :class:`~keras_selfevo.SelfEvolvingModel`;
  ``"logits"`` and ``"probabilities"`` for a classifier (a last ``Dense`` layer with more
  than one unit and a linear or softmax activation); ``"predictions"`` otherwise.
- ``generate`` for :class:`~keras_selfevo.zoo.CharRNN`: ``prompt`` (int32 token ids
  ``[batch, time]``) and ``seed`` (int32 ``[batch]``, the first row's seed drives the batch)
  → ``tokens``, the prompt followed by ``generate_length`` sampled tokens.

The version is written into a temporary folder beside it and renamed into place, so a
failure never leaves a half-written version. After writing, a fresh Python process loads it
with ``tf.saved_model.load`` and runs every signature on a sample batch; the results must
match the model's own ``predict`` (max abs diff ≤ 1e-5).

:func:`serving_request` answers a TF Serving REST ``predict`` body as the server would, so a
request format can be tested without a server. To serve for real::

    docker run -p 8501:8501 -e MODEL_NAME=mnist_cnn \
        -v "$PWD/serving/mnist_cnn:/models/mnist_cnn" tensorflow/serving
    curl -d '{"instances": [...]}' http://localhost:8501/v1/models/mnist_cnn:predict
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._files import move_into_place

TOLERANCE = 1e-5
_DTYPE_NAMES = {tf.float32: "DT_FLOAT", tf.int32: "DT_INT32", tf.int64: "DT_INT64",
                tf.float16: "DT_HALF", tf.float64: "DT_DOUBLE", tf.string: "DT_STRING"}


@dataclasses.dataclass
class ExportReport:
    """What was written and how the fresh-process check went.

    Attributes:
        path: The version folder.
        version: Its integer version.
        signatures: ``saved_model_cli show --all`` text of the signatures.
        max_abs_diff: For each signature, the largest difference from the model's output.
        ok: Every signature ran and matched within :data:`TOLERANCE`.
    """

    path: str
    version: int
    signatures: str
    max_abs_diff: dict[str, float]
    ok: bool

    def __str__(self) -> str:
        checks = "\n".join(
            f"  {name}: max |serving - predict| = {diff:.3g} "
            f"{'ok' if diff <= TOLERANCE else 'MISMATCH'}"
            for name, diff in self.max_abs_diff.items()
        )
        verdict = "verified" if self.ok else "FAILED verification"
        return (f"Exported version {self.version} to {self.path} ({verdict}; reloaded in a "
                f"fresh process)\n{checks}\n\n{self.signatures}")


# ----------------------------------------------------------------------------- inputs
def _input_specs(model: keras.Model) -> list[tf.TensorSpec]:
    """Named specs with a free batch size: the model's Inputs, or token ids for CharRNN."""
    from keras_selfevo.zoo.char_rnn import CharRNN

    if isinstance(model, CharRNN):
        return [tf.TensorSpec([None, None], tf.int32, name="tokens")]
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


def _call_inputs(specs: list[tf.TensorSpec], args: tuple) -> Any:
    return args[0] if len(specs) == 1 else list(args)


# ---------------------------------------------------------------------------- outputs
def output_kind(model: keras.Model) -> str:
    """``"self_policy"``, ``"classifier"`` or ``"regression"``: how outputs are named."""
    from keras_selfevo.training import SelfEvolvingModel

    if isinstance(model, SelfEvolvingModel):
        return "self_policy"
    last = model.layers[-1] if getattr(model, "layers", None) else None
    if isinstance(last, keras.layers.Dense) and last.units > 1:
        activation = keras.activations.serialize(last.activation)
        if activation in ("linear", "softmax"):
            return "classifier"
    return "regression"


def named_outputs(model: keras.Model, raw: Any) -> dict[str, tf.Tensor]:
    """The serving outputs (float32) from what the model returned."""
    kind = output_kind(model)
    if kind == "self_policy":
        if isinstance(raw, Mapping):
            outputs = {key: raw[key] for key in ("self", "policy") if key in raw}
        else:
            outputs = {"self": raw, "policy": raw}
    elif kind == "classifier":
        raw = tf.cast(raw, tf.float32)
        if keras.activations.serialize(model.layers[-1].activation) == "softmax":
            outputs = {"probabilities": raw, "logits": tf.math.log(tf.maximum(raw, 1e-30))}
        else:
            outputs = {"logits": raw, "probabilities": tf.nn.softmax(raw, axis=-1)}
    else:
        outputs = {"predictions": raw}
    return {key: tf.cast(value, tf.float32) for key, value in outputs.items()}


# ------------------------------------------------------------------------ signatures
def _signatures(model: keras.Model, generate_length: int, temperature: float,
                top_k: int | None) -> dict[str, tuple[Callable, list[tf.TensorSpec]]]:
    from keras_selfevo.zoo.char_rnn import CharRNN

    specs = _input_specs(model)

    def serve(*args):
        return named_outputs(model, model(_call_inputs(specs, args), training=False))

    signatures = {"serving_default": (serve, specs), "serve": (serve, specs)}
    if isinstance(model, CharRNN):
        def generate(prompt, seed):
            stream = tf.stack([seed[0], tf.constant(0, tf.int32)])
            return {"tokens": model._sample_loop(prompt, generate_length, tf.constant(
                temperature, tf.float32), top_k, stream)}

        signatures["generate"] = (generate, [tf.TensorSpec([None, None], tf.int32, name="prompt"),
                                             tf.TensorSpec([None], tf.int32, name="seed")])
    return signatures


def sample_inputs(model: keras.Model, batch: int = 3, time: int = 6,
                  seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """A random batch for each signature's inputs: floats in [0, 1], valid token ids."""
    rng = np.random.default_rng(seed)
    vocab = int(getattr(model, "vocab_size", 2) or 2)
    result = {}
    for name, (_, specs) in _signatures(model, 1, 0.0, None).items():
        arrays = {}
        for spec in specs:
            shape = [batch] + [time if d is None else d for d in spec.shape[1:]]
            if spec.name == "seed":
                arrays[spec.name] = rng.integers(0, 2**31 - 1, size=shape).astype(np.int32)
            elif spec.dtype.is_floating:
                arrays[spec.name] = rng.uniform(size=shape).astype(np.float32)
            else:
                arrays[spec.name] = rng.integers(3 if vocab > 3 else 0, vocab, size=shape).astype(
                    spec.dtype.as_numpy_dtype)
        result[name] = arrays
    return result


def _expected(model: keras.Model, name: str, inputs: dict[str, np.ndarray], generate_length: int,
              temperature: float, top_k: int | None) -> dict[str, np.ndarray]:
    """What the model itself gives for a signature's inputs (``predict``, ``generate_ids``)."""
    if name == "generate":
        seed = tf.constant([int(inputs["seed"][0]), 0], tf.int32)
        tokens = model.generate_ids(inputs["prompt"], generate_length, temperature, top_k, seed)
        return {"tokens": tokens.numpy()}
    specs = _input_specs(model)
    args = [inputs[spec.name] for spec in specs]
    raw = model.predict(_call_inputs(specs, tuple(args)), verbose=0)
    return {k: np.asarray(v) for k, v in named_outputs(model, raw).items()}


# -------------------------------------------------------------------------- the write
def _next_version(base_dir: str) -> int:
    versions = [int(n) for n in os.listdir(base_dir) if n.isdigit()] if os.path.isdir(
        base_dir) else []
    return max(versions, default=0) + 1


def _check_writable(base_dir: str) -> None:
    existing = os.path.abspath(base_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"`base_dir` {base_dir!r} is not writable ({existing!r} does not "
                         "allow creating folders).")


def export_for_serving(
    model: keras.Model,
    base_dir: str | os.PathLike,
    version: int | None = None,
    *,
    overwrite: bool = False,
    verify: bool = True,
    generate_length: int = 32,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> ExportReport:
    """Write ``model`` as ``base_dir/<version>/`` for TF Serving, then verify it.

    Args:
        model: A built Keras model (a zoo model, a SelfEvolvingModel, a model returned by
            ``MetaLearner.adapt``...). Mixed-precision models export float32 signatures.
        base_dir: The model's serving folder (TF Serving's ``model_base_path``).
        version: A positive integer; ``None`` takes the next free one.
        overwrite: Replace an existing version (otherwise that is an error).
        verify: Reload in a fresh process and compare every signature with the model.
        generate_length: Tokens the ``generate`` signature samples (CharRNN).
        temperature: Sampling temperature of ``generate`` (0: greedy).
        top_k: Top-k of ``generate`` (``None``: all tokens).

    Returns:
        An :class:`ExportReport`; ``report.ok`` is False when verification failed.

    Raises:
        ValueError: an unbuilt model, a bad version, an existing version without
            ``overwrite``, or a folder that cannot be written. Nothing is written then.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    if not model.built or not model.weights:
        raise ValueError(f"`model` {model.name!r} is not built: call it on data (or build it "
                         "from keras.Input) before exporting.")
    base_dir = os.fspath(base_dir)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 1):
        raise ValueError(f"`version` must be a positive integer or None, got {version!r}.")
    _check_writable(base_dir)
    version = _next_version(base_dir) if version is None else version
    target = os.path.join(base_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise ValueError(f"Version {version} already exists at {target}; pass overwrite=True "
                         "(--overwrite) to replace it, or choose another version.")
    signatures = _signatures(model, generate_length, temperature, top_k)
    os.makedirs(base_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{version}-incomplete-", dir=base_dir)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, (fn, specs) in signatures.items():
            archive.add_endpoint(name, fn, input_signature=specs)
        archive.write_out(staging, verbose=False)
        move_into_place(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)

    text = describe_signatures(target)
    diffs: dict[str, float] = {}
    if verify:
        inputs = sample_inputs(model)
        served = run_in_fresh_process(target, inputs)
        for name, arrays in inputs.items():
            expected = _expected(model, name, arrays, generate_length, temperature, top_k)
            got = served.get(name, {})
            if set(got) != set(expected):
                diffs[name] = float("inf")
                continue
            diffs[name] = max(float(np.max(np.abs(np.asarray(got[k], np.float64)
                                                  - np.asarray(expected[k], np.float64))))
                              for k in expected)
    ok = all(d <= TOLERANCE for d in diffs.values())
    return ExportReport(path=target, version=version, signatures=text, max_abs_diff=diffs, ok=ok)


# ------------------------------------------------------------------------- inspection
def describe_signatures(saved_model_dir: str) -> str:
    """The signatures as ``saved_model_cli show --dir D --all`` lists them."""
    from tensorflow.python.tools import saved_model_utils

    meta_graph = saved_model_utils.get_meta_graph_def(saved_model_dir, "serve")
    lines = ["MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:", ""]

    def tensor_lines(kind, infos):
        out = [f"  The given SavedModel SignatureDef contains the following {kind}(s):"]
        for key in sorted(infos):
            info = infos[key]
            dims = tuple(d.size for d in info.tensor_shape.dim)
            shape = "unknown_rank" if info.tensor_shape.unknown_rank else str(dims).replace(
                ",)", ")")
            dtype = _DTYPE_NAMES.get(tf.as_dtype(info.dtype), str(tf.as_dtype(info.dtype)))
            out += [f"    {kind}s['{key}'] tensor_info:", f"        dtype: {dtype}",
                    f"        shape: {shape}", f"        name: {info.name}"]
        return out

    for name in sorted(meta_graph.signature_def):
        if name.startswith("__"):
            continue
        signature = meta_graph.signature_def[name]
        lines.append(f"signature_def['{name}']:")
        lines += tensor_lines("input", signature.inputs)
        lines += tensor_lines("output", signature.outputs)
        lines += [f"  Method name is: {signature.method_name}", ""]
    return "\n".join(lines)


def run_in_fresh_process(saved_model_dir: str, inputs: dict[str, dict[str, np.ndarray]],
                         timeout: float = 600) -> dict[str, dict[str, np.ndarray]]:
    """Run signatures on inputs in a new Python process (``tf.saved_model.load``)."""
    with tempfile.TemporaryDirectory() as tmp:
        source, result = os.path.join(tmp, "inputs.npz"), os.path.join(tmp, "outputs.npz")
        np.savez(source, **{f"{sig}/{key}": value for sig, arrays in inputs.items()
                            for key, value in arrays.items()})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        process = subprocess.run(
            [sys.executable, "-m", "keras_selfevo.export", saved_model_dir, source, result],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
        if process.returncode != 0:
            raise RuntimeError(f"Reloading {saved_model_dir} in a fresh process failed:\n"
                               f"{process.stderr[-3000:]}")
        outputs: dict[str, dict[str, np.ndarray]] = {}
        with np.load(result) as data:
            for key in data.files:
                signature, name = key.split("/", 1)
                outputs.setdefault(signature, {})[name] = data[key]
        return outputs


def _fresh_process_main(saved_model_dir: str, source: str, result: str) -> None:
    loaded = tf.saved_model.load(saved_model_dir)
    inputs: dict[str, dict[str, np.ndarray]] = {}
    with np.load(source) as data:
        for key in data.files:
            signature, name = key.split("/", 1)
            inputs.setdefault(signature, {})[name] = data[key]
    outputs = {}
    for signature, arrays in inputs.items():
        values = loaded.signatures[signature](**{k: tf.constant(v) for k, v in arrays.items()})
        outputs.update({f"{signature}/{k}": v.numpy() for k, v in values.items()})
    np.savez(result, **outputs)


# ---------------------------------------------------------------------------- serving
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


def load_checkpoint(path: str) -> keras.Model:
    """Load a ``.keras`` checkpoint with ``safe_mode=True`` (no Lambda / arbitrary code)."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"`checkpoint` must be a .keras file, got {path!r}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint at {path!r}.")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a .keras file (a .keras file is a zip archive).")
    import keras_selfevo  # noqa: F401  (registers the package's classes)

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as error:
        raise ValueError(f"Refusing to load {path!r} with safe_mode=True: "
                         f"{' '.join(str(error).split())[:300]}") from None


if __name__ == "__main__":
    _fresh_process_main(*sys.argv[1:4])
