"""How long ``keras-selfevo --help`` takes, for the command and each of its subcommands.

Each ``--help`` runs in a fresh process (what a user waits for), ``--repeats`` times after a
warm-up; the reference is a fresh interpreter that only starts (``python -c pass``), timed
back to back in the same way, so the ratio says what the command adds to Python's own start.
Parsing happens before TensorFlow is imported; the last column confirms that TensorFlow
stayed out of the process (``-X importtime`` lists every module imported).

    python benchmarks/cli_help.py [--repeats 5]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import median_seconds, parse_args, report  # noqa: E402

COMMANDS = ("", "demo", "train", "evolve", "meta-train", "adapt", "generate", "export",
            "recipes", "presets", "prepare-mnist")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True)


def main() -> None:
    args = parse_args(__doc__)
    repeats = 3 if args.quick else args.repeats
    python = [sys.executable]
    script = (shutil.which("keras-selfevo", path=os.path.dirname(sys.executable))
              or shutil.which("keras-selfevo"))
    if script is None:
        raise SystemExit("the keras-selfevo command is not installed (pip install -e .)")
    command = [script]
    bare = median_seconds(lambda: _run(python + ["-c", "pass"]), repeats)
    rows = []
    for name in COMMANDS:
        argv = command + ([name] if name else []) + ["--help"]
        seconds = median_seconds(lambda argv=argv: _run(argv), repeats)
        imports = _run(python + ["-X", "importtime", script] + argv[1:]).stderr
        rows.append({"command": f"keras-selfevo {name} --help".replace("  ", " "),
                     "seconds": seconds, "python -c pass": bare,
                     "ratio": seconds / bare,
                     "imports tensorflow": bool(re.search(r"\|\s+tensorflow$", imports,
                                                          re.M))})
    report("cli_help", rows)


if __name__ == "__main__":
    main()
