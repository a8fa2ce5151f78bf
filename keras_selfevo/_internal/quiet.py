"""Quiet start-up for the command line: only the command's own lines and progress bars.

TensorFlow 2.21 writes oneDNN/CUDA notices to file descriptor 2 while it loads, before
``TF_CPP_MIN_LOG_LEVEL`` takes effect, and later C++ notices (e.g. "oneDNN supports DT_INT32
only on platforms with AVX-512") that are not errors of the command. When the process is the
``keras-selfevo`` command without ``--verbose``:

- TensorFlow is imported with fd 2 pointed at /dev/null, and its C++ log level is set to
  fatal-only (``TF_CPP_MIN_LOG_LEVEL=3``, unless the user set it): failed operations still
  raise Python exceptions, which the command reports;
- TFDS's nested progress bars are off (our builders print one line when they generate data);
- warnings known to be harmless are filtered by category and message, each with its reason
  in :data:`HARMLESS_WARNINGS`.

``--verbose`` keeps everything. Library users importing the package are not affected.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

CLI_NAME = "keras-selfevo"
VERBOSE_FLAG = "--verbose"

# (category, message regex, why it is harmless for the command's user).
HARMLESS_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (UserWarning, r".*`shuffle=True` was passed, but will be ignored",
     "our datasets are shuffled by seed before fit"),
)


# The modules ``python -m`` runs as the command.
CLI_MODULES = ("keras_selfevo", "keras_selfevo.cli")


def running_as_cli() -> bool:
    """Whether this process is the ``keras-selfevo`` command (or ``python -m`` of it)."""
    if sys.argv and os.path.basename(sys.argv[0]) == CLI_NAME:
        return True
    command = list(getattr(sys, "orig_argv", ()))
    module = command[command.index("-m") + 1:][:1] if "-m" in command else []
    return bool(module) and module[0] in CLI_MODULES


def quiet_requested() -> bool:
    """Whether the command runs quietly: the console script, without ``--verbose``."""
    return running_as_cli() and VERBOSE_FLAG not in sys.argv[1:]


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and what loads its shared libraries) with stderr muted."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        for module in ("tensorflow", "keras", "tensorflow_probability",
                       "tensorflow_datasets"):
            importlib.import_module(module)
        # Listing the GPUs initialises the CUDA platform, whose "failed call to cuInit" on a
        # machine without one would otherwise print later. Physical devices can still be
        # split into logical ones afterwards.
        sys.modules["tensorflow"].config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_quietly() -> None:
    """Everything a quiet command needs before it imports the rest of the package."""
    import_tensorflow_quietly()
    sys.modules["tensorflow_datasets"].disable_progress_bar()
    for category, message, _ in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
