"""Ready-trained models by name: ``kse.zoo.from_preset`` and ``kse.zoo.save_preset``.

A preset is a folder in keras-hub's preset layout (see :mod:`keras_selfevo.presets`), so
``keras_hub.upload_preset(uri, folder)`` can publish one. Loading is safe-mode (no Lambda or
arbitrary code) and checks the weights file against the SHA-256 in the metadata first.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any

import keras

from keras_selfevo import presets
from keras_selfevo._internal.machine import cpu_instructions
from keras_selfevo.version import __version__


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_presets() -> list[dict[str, Any]]:
    """The shipped presets: each one's metadata with its ``name`` and ``size_bytes``."""
    return [{**presets.metadata(name), "name": name, "size_bytes": presets.size_bytes(name)}
            for name in presets.names()]


def from_preset(name_or_path: str | os.PathLike) -> keras.Model:
    """A ready-trained model: a shipped preset by name, or a folder of the preset layout.

    Example:
    >>> model = kse.zoo.from_preset("shakespeare_gpt")
    >>> model.generate(["ROMEO:"], 200, temperature=0.8, seed=0)

    Raises:
        FileNotFoundError: no such preset, or a folder missing one of its files.
        ValueError: a torn or altered weights file (its SHA-256 differs from the metadata's),
            or a folder that is not a keras-selfevo preset.
    """
    folder = presets.locate(name_or_path)
    meta = presets.metadata(folder)
    weights = os.path.join(folder, presets.WEIGHTS_FILE)
    if file_sha256(weights) != meta["weights_file_sha256"]:
        raise ValueError(f"The weights of the preset {folder!r} do not match the SHA-256 of "
                         "its metadata.json: a torn or altered copy; restore the preset.")
    path = os.path.join(folder, presets.CONFIG_FILE)
    config = presets.read_json(path)
    if "class_name" not in config:
        raise ValueError(f"{path!r} is not a Keras model's serialization.")
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Refusing to load the preset {folder!r} with safe_mode=True: "
                         f"{' '.join(str(error).split())[:300]}") from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"The preset {folder!r} holds a {type(model).__name__}, not a model.")
    model.load_weights(weights)
    return model


def save_preset(model: keras.Model, folder: str, *, description: str,
                **metadata: Any) -> str:
    """Write ``model`` as a preset into ``folder`` (replaced whole, never left half-written).

    Args:
        model: A built model of the package (its serialization must load in safe mode).
        folder: The preset's folder; its last part is the preset's name.
        description: What the model is, in a sentence.
        **metadata: More of ``metadata.json``: the recipe, command and seed that made it,
            its card's figures, the figure a test re-measures (``check``).

    Returns:
        ``folder``.
    """
    folder = os.path.abspath(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".preset-", dir=parent)
    try:
        config = keras.saving.serialize_keras_object(model)
        config.pop("compile_config", None)  # a preset is the model; training compiles it
        # An uncompiled copy rebuilt from the config: the weights file holds no optimizer
        # state, and the preset is known to load before it is written.
        copy = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)),
                                                     safe_mode=True)  # it consumes its dict
        copy.set_weights(model.get_weights())
        with open(os.path.join(scratch, presets.CONFIG_FILE), "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2)
        weights = os.path.join(scratch, presets.WEIGHTS_FILE)
        copy.save_weights(weights)
        try:
            import keras_hub

            hub_version = keras_hub.__version__
        except ImportError:  # pragma: no cover - keras-hub is a dependency
            hub_version = None
        meta = {"name": os.path.basename(folder), "description": description,
                "class_name": type(model).__name__, **metadata,
                "parameter_count": int(copy.count_params()),
                "weights_file_sha256": file_sha256(weights),
                "keras_version": keras.__version__, "keras_hub_version": hub_version,
                "keras_selfevo_version": __version__, "cpu": cpu_instructions(),
                "date": datetime.date.today().isoformat()}
        with open(os.path.join(scratch, presets.METADATA_FILE), "w",
                  encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)
        old = None
        if os.path.exists(folder):
            old = tempfile.mkdtemp(prefix=".preset-old-", dir=parent)
            os.replace(folder, os.path.join(old, "preset"))
        os.replace(scratch, folder)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return folder
