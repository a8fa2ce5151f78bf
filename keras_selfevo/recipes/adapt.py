"""``keras-selfevo adapt``: a saved language model adapted to a user's text file."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data.text_files import read_text_file
from keras_selfevo.export import export_for_serving
from keras_selfevo.zoo import load_checkpoint
from keras_selfevo.zoo.adaptation import UNKNOWN_POLICIES, adapt, check_arguments


def adapt_file(model_path: str, text_path: str, output: str, steps: int | None = None, *,
               learning_rate: float | None = None, batch_size: int | None = None,
               unknown: str = "error", placeholder: str = " ", seed: int = 0,
               dynamic: bool = False, decay: float = 0.0,
               export: bool = False, verbose: str | int = "auto") -> dict[str, Any]:
    """Adapt the model saved at ``model_path`` to ``text_path``; write ``output/``.

    Writes ``output/model.keras`` (the adapted model; the original file is only read),
    ``output/adapt.json`` (held-back nats/char before and after) and, with ``export``,
    a verified serving export in ``output/serving/1``. Returns what ``adapt.json`` holds.
    ``dynamic`` and ``decay``: dynamic evaluation (see :func:`~keras_selfevo.zoo.adapt`).
    """
    # Before the file is read.
    _checks.one_of(unknown, "unknown", UNKNOWN_POLICIES)
    check_arguments(steps, batch_size, None, learning_rate, dynamic, decay)
    if os.path.isfile(output):
        raise ValueError(f"`--output` {output!r} is a file; give a folder.")
    contents = read_text_file(text_path)
    model = load_checkpoint(model_path)
    result = adapt(model, contents, steps, learning_rate=learning_rate,
                   batch_size=batch_size, unknown=unknown, placeholder=placeholder,
                   seed=seed, dynamic=dynamic, decay=decay, verbose=verbose)
    os.makedirs(output, exist_ok=True)
    handle, partial = tempfile.mkstemp(suffix=".keras", prefix=".model-", dir=output)
    os.close(handle)
    try:
        result.model.save(partial)
        os.replace(partial, os.path.join(output, "model.keras"))
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    report = {"model": model_path, "text": text_path, "steps": result.steps,
              "train_chars": result.train_chars, "held_out_chars": result.held_out_chars,
              "before_nats_per_char": result.before, "after_nats_per_char": result.after,
              "seconds": result.seconds, "dynamic": dynamic,
              "unknown_characters": result.unknown,
              "unknown_policy": unknown}
    with open(os.path.join(output, "adapt.json"), "w") as out:
        json.dump(report, out, indent=2)
    if export:
        exported = export_for_serving(result.model, os.path.join(output, "serving"))
        report["export"] = str(exported)
        report["export_ok"] = exported.ok
    return report
