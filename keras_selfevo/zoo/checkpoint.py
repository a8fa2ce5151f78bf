"""Load a ``.keras`` checkpoint or a preset in safe mode, with a clear error for anything else.

Every Keras class of the package is registered when ``keras_selfevo`` is imported, so any
model the package saves loads here.
"""

from __future__ import annotations

import os
import zipfile

import keras

from keras_selfevo import presets


def load_checkpoint(path: str) -> keras.Model:
    """Load a ``.keras`` checkpoint, or a preset, with ``safe_mode=True`` (no arbitrary code).

    ``path`` may also be a preset's name (``keras-selfevo presets`` lists them) or a folder
    of the preset layout: see :func:`keras_selfevo.zoo.from_preset`.
    """
    if presets.is_preset(path):
        from keras_selfevo.zoo.presets import from_preset

        return from_preset(path)
    if not str(path).endswith(".keras"):
        raise ValueError(f"`checkpoint` must be a .keras file or a preset (one of "
                         f"{presets.names()}, or a preset folder), got {path!r}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint at {path!r}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a .keras file (a .keras file is a zip archive).")
    with zipfile.ZipFile(path) as archive:
        members = set(archive.namelist())
        if not {"config.json", "metadata.json"} <= members:
            raise ValueError(f"{path!r} is a zip archive but not a Keras model file: it lacks "
                             "config.json / metadata.json (save with model.save('x.keras')).")
        broken = archive.testzip()
    if broken is not None:
        raise ValueError(f"{path!r} is corrupted: its member {broken!r} fails its CRC check "
                         "(a torn copy or write); use an intact copy of the checkpoint.")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as error:
        raise ValueError(f"Refusing to load {path!r} with safe_mode=True: "
                         f"{' '.join(str(error).split())[:300]}") from None
    except (KeyError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"Cannot load {path!r}: {type(error).__name__}: "
                         f"{' '.join(str(error).split())[:300]}") from None
