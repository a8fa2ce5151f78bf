"""The fresh-process half of an export's check: TensorFlow and NumPy only, as a server has.

Run by path (``python .../serving_check.py SAVED_MODEL INPUTS.npz OUTPUTS.npz``), not as a
module of the package, so nothing of keras-selfevo is imported in that process: a SavedModel
that passes serves without this package installed. Inputs and outputs travel as ``.npz``
files keyed ``signature/name``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and sys.path and (
        os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__))):
    del sys.path[0]  # run by path: the package's folder is not importable from here

import numpy as np  # noqa: E402


def storable(array: np.ndarray) -> np.ndarray:
    """Strings (``str`` or ``bytes``) as UTF-8 fixed-width bytes: ``.npz`` needs no pickling."""
    array = np.asarray(array)
    if array.dtype.kind not in "OU":
        return array
    encoded = [x.encode() if isinstance(x, str) else bytes(x) for x in array.ravel()]
    return np.array(encoded, dtype=bytes).reshape(array.shape)


def read_signature_arrays(path: str) -> dict[str, dict[str, np.ndarray]]:
    """``{signature: {name: array}}`` from an ``.npz`` file keyed ``signature/name``."""
    arrays: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            signature, name = key.split("/", 1)
            arrays.setdefault(signature, {})[name] = data[key]
    return arrays


def write_signature_arrays(path: str, arrays: dict[str, dict[str, np.ndarray]]) -> None:
    """The inverse of :func:`read_signature_arrays`."""
    np.savez(path, **{f"{signature}/{name}": storable(value)
                      for signature, named in arrays.items() for name, value in named.items()})


def main(saved_model_dir: str, source: str, result: str) -> None:
    """Load ``saved_model_dir``, run each signature on its inputs, write the outputs."""
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    outputs = {}
    for signature, arrays in read_signature_arrays(source).items():
        values = loaded.signatures[signature](**{k: tf.constant(v) for k, v in arrays.items()})
        outputs[signature] = {k: v.numpy() for k, v in values.items()}
    write_signature_arrays(result, outputs)
    if "keras_selfevo" in sys.modules:
        raise RuntimeError("the serving check imported keras_selfevo; it must not need it")


if __name__ == "__main__":
    main(*sys.argv[1:4])
