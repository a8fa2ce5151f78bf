"""Quiet TensorFlow start-up for the command line.

TensorFlow 2.21 writes oneDNN/CUDA notices to file descriptor 2 while it loads, before
``TF_CPP_MIN_LOG_LEVEL`` takes effect. The CLI promises one clear line on stderr per error,
so when the process is the ``keras-selfevo`` command, TensorFlow is imported with fd 2
pointed at /dev/null. Library users importing the package are not affected.
"""

from __future__ import annotations

import importlib
import os
import sys

CLI_NAME = "keras-selfevo"


def running_as_cli() -> bool:
    """Whether this process is the ``keras-selfevo`` console script."""
    return bool(sys.argv) and os.path.basename(sys.argv[0]) == CLI_NAME


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and what loads its shared libraries) with stderr muted."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        for module in ("tensorflow", "keras", "tensorflow_probability"):
            importlib.import_module(module)
        # Listing the GPUs initialises the CUDA platform, whose "failed call to cuInit" on a
        # machine without one would otherwise print later. Physical devices can still be
        # split into logical ones afterwards.
        sys.modules["tensorflow"].config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
