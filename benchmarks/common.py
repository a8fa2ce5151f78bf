"""Shared pieces of the benchmark scripts: timing, the markdown table, the JSON file."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(description: str, flags: dict[str, str] | None = None,
               options: dict[str, str] | None = None,
               repeated: dict[str, str] | None = None) -> argparse.Namespace:
    """``--quick``, ``--repeats``, and a script's ``flags``, ``options`` and ``repeated``.

    ``flags`` are on/off, ``options`` take a text, ``repeated`` options collect every value
    given into a list.
    """
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median taken)")
    for flag, help_text in (flags or {}).items():
        parser.add_argument(flag, action="store_true", help=help_text)
    for option, help_text in (options or {}).items():
        parser.add_argument(option, help=help_text)
    for option, help_text in (repeated or {}).items():
        parser.add_argument(option, action="append", default=[], help=help_text)
    return parser.parse_args()


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of equal keys as a markdown table; floats get 4 significant digits."""
    columns = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, rows: Sequence[dict[str, Any]], **extra: Any) -> str:
    """Print the table and write ``results/<name>.json``; returns the JSON path."""
    import keras
    import tensorflow as tf

    print(markdown_table(rows))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    payload = {
        "benchmark": name,
        "rows": list(rows),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        **extra,
    }
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2)
    print(f"\nwritten: {os.path.relpath(path)}")
    return path
