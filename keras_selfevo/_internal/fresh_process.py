"""Run a module of the package in a new Python process (reload checks of saves and exports)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_module(module: str, args: list[str], what: str, timeout: float = 600) -> None:
    """Run ``python -m module *args`` with this process's ``sys.path``; quiet TensorFlow.

    Raises:
        RuntimeError: the process failed; the message starts with ``what`` and ends with
            the tail of its stderr.
    """
    _run(["-m", module, *args], what, timeout)


def run_script(path: str, args: list[str], what: str, timeout: float = 600) -> None:
    """Run ``python path *args`` (a file run by path, not a module of the package); as above."""
    _run([path, *args], what, timeout)


def _run(command: list[str], what: str, timeout: float) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    process = subprocess.run([sys.executable, *command], capture_output=True,
                             text=True, timeout=timeout, env=env)
    if process.returncode != 0:
        raise RuntimeError(f"{what} in a fresh process failed:\n{process.stderr[-4000:]}")
