"""The SavedModel writer: TF Serving's layout, atomic versions, a fresh-process check.

The version is written into a temporary folder beside it, checked there — a fresh Python
process that imports only TensorFlow (``serving_check.py``) loads it with
``tf.saved_model.load`` and runs every signature on a sample batch; the
results must match each signature's reference (the model's own ``predict`` / ``generate``;
max abs diff ≤ 1e-5) — and then renamed into place, so a failure or a kill never leaves a
half-written or unchecked version. A lock on the ``base_dir`` folder, held from choosing
the version to the rename, makes concurrent exports take successive versions; staging folders
of exports that died are removed by the next one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.files import move_into_place
from keras_selfevo._internal.fresh_process import run_script
from keras_selfevo.export import serving_check
from keras_selfevo.export.signatures import sample_inputs, serving_signatures

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
        ok: Every signature ran and matched within :data:`TOLERANCE` (True when the check
            was skipped).
        verified: Whether the fresh-process check ran.
    """

    path: str
    version: int
    signatures: str
    max_abs_diff: dict[str, float]
    ok: bool
    verified: bool = True

    def __str__(self) -> str:
        checks = "\n".join(
            f"  {name}: max |serving - predict| = {diff:.3g} "
            f"{'ok' if diff <= TOLERANCE else 'MISMATCH'}"
            for name, diff in self.max_abs_diff.items()
        )
        if not self.verified:
            return (f"Exported version {self.version} to {self.path} (not verified)\n\n"
                    f"{self.signatures}")
        verdict = "verified" if self.ok else "FAILED verification"
        return (f"Exported version {self.version} to {self.path} ({verdict}; reloaded in a "
                f"fresh process)\n{checks}\n\n{self.signatures}")


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
    generate_length: int = 256,
) -> ExportReport:
    """Write ``model`` as ``base_dir/<version>/`` for TF Serving, then verify it.

    Args:
        model: A built Keras model (a zoo model, a SelfEvolvingModel, a model returned by
            ``MetaLearner.adapt``...). Mixed-precision models export float32 signatures.
        base_dir: The model's serving folder (TF Serving's ``model_base_path``).
        version: A positive integer; ``None`` takes the next free one.
        overwrite: Replace an existing version (otherwise that is an error).
        verify: Reload in a fresh process and compare every signature with the model.
        generate_length: For language models, the most tokens a ``generate`` request may
            ask for (its ``length`` input; the sampling settings are inputs too).

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
    _checks.positive_int(version, "version", allow_none=True)
    _check_writable(base_dir)
    if version is not None and os.path.exists(os.path.join(base_dir, str(version))) and (
            not overwrite):
        raise _exists(version, os.path.join(base_dir, str(version)))
    signatures = serving_signatures(model, generate_length)
    try:
        os.makedirs(base_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"`base_dir` {base_dir!r} cannot be created or written: "
                         f"{error.strerror or error}.") from None
    # Held from choosing the version to the rename: of two concurrent exports one waits,
    # then takes the next version (or finds its fixed version taken). Any staging folder
    # found while holding it belongs to an export that died.
    with _export_lock(base_dir):
        _remove_stale_staging(base_dir)
        version = _next_version(base_dir) if version is None else version
        target = os.path.join(base_dir, str(version))
        if os.path.exists(target) and not overwrite:
            raise _exists(version, target)
        staging = tempfile.mkdtemp(prefix=f".{version}-incomplete-", dir=base_dir)
        try:
            archive = keras.export.ExportArchive()
            archive.track(model)
            for name, signature in signatures.items():
                for resource in signature.resources:
                    archive.track(resource)
                archive.add_endpoint(name, signature.fn, input_signature=signature.input_specs)
            archive.write_out(staging, verbose=False)
            text = describe_signatures(staging)
            # Verified before the rename: a version in place has been checked.
            diffs = _verify(model, signatures, staging) if verify else {}
            move_into_place(staging, target)
        finally:
            if os.path.exists(staging):
                shutil.rmtree(staging, ignore_errors=True)
    ok = all(d <= TOLERANCE for d in diffs.values())
    return ExportReport(path=target, version=version, signatures=text, max_abs_diff=diffs, ok=ok,
                        verified=verify)


def _exists(version: int, target: str) -> ValueError:
    return ValueError(f"Version {version} already exists at {target}; pass overwrite=True "
                      "to replace it, or choose another version.")


@contextlib.contextmanager
def _export_lock(base_dir: str):
    """An exclusive ``flock`` on the ``base_dir`` folder itself (released if the process dies).

    Locking the folder rather than a file in it leaves nothing behind for TF Serving to see.
    """
    descriptor = os.open(base_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _remove_stale_staging(base_dir: str) -> None:
    for name in os.listdir(base_dir):
        if name.startswith(".") and ("-incomplete-" in name or name.startswith(".replaced-")):
            shutil.rmtree(os.path.join(base_dir, name), ignore_errors=True)


def _verify(model: keras.Model, signatures: dict, saved_model_dir: str) -> dict[str, float]:
    """For each signature, the largest difference between the reloaded export and its reference."""
    inputs = sample_inputs(model, signatures=signatures)
    served = run_in_fresh_process(saved_model_dir, inputs)
    diffs: dict[str, float] = {}
    for name, arrays in inputs.items():
        expected = signatures[name].reference(arrays)
        got = served.get(name, {})
        diffs[name] = (max(_difference(got[k], expected[k]) for k in expected)
                       if set(got) == set(expected) else float("inf"))
    return diffs


# ------------------------------------------------------------------------- inspection
def _difference(got: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference; for strings 0 when all are equal, else infinity."""
    got, expected = serving_check.storable(got), serving_check.storable(expected)
    if got.dtype.kind == "S" or expected.dtype.kind == "S":
        return 0.0 if np.array_equal(got, expected) else float("inf")
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)),
                        initial=0.0))


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
    """Run signatures on inputs in a new Python process that imports only TensorFlow.

    The process (``serving_check.py``, run by path) loads ``saved_model_dir`` with
    ``tf.saved_model.load``; it does not import keras-selfevo, as a server would not.
    """
    with tempfile.TemporaryDirectory() as tmp:
        source, result = os.path.join(tmp, "inputs.npz"), os.path.join(tmp, "outputs.npz")
        serving_check.write_signature_arrays(source, inputs)
        run_script(serving_check.__file__, [saved_model_dir, source, result],
                   f"Reloading {saved_model_dir}", timeout)
        return serving_check.read_signature_arrays(result)
