"""Run time of every tutorial notebook at both sizes (``KSE_TUTORIAL_SIZE``).

Each notebook runs top to bottom with nbclient in a fresh kernel (TensorFlow's import
included), in a scratch folder, once per size; the table is what ``tutorials/README.md``
quotes. A failing cell fails the script.

    python benchmarks/tutorial_times.py [--sizes small,default] [--notebooks 01,07]
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import parse_args, report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(path: str, size: str) -> float:
    """Seconds to execute ``path`` at ``size`` in a fresh kernel."""
    import nbformat
    from nbclient import NotebookClient

    os.environ.update(KSE_TUTORIAL_SIZE=size, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        client = NotebookClient(notebook, timeout=3600, kernel_name="python3",
                                resources={"metadata": {"path": scratch}})
        start = time.perf_counter()
        client.execute()
        return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__, options={"--sizes": "comma-separated sizes (small,default)",
                                        "--notebooks": "comma-separated number prefixes"})
    sizes = (args.sizes or "small,default").split(",")
    paths = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))
    if args.notebooks:
        wanted = tuple(args.notebooks.split(","))
        paths = [p for p in paths if os.path.basename(p).startswith(wanted)]
    rows = []
    for path in paths:
        row = {"notebook": os.path.basename(path)}
        for size in sizes:
            row[f"{size} (s)"] = run_notebook(path, size)
            print(f"{row['notebook']} at {size}: {row[f'{size} (s)']:.0f} s", flush=True)
        rows.append(row)
    report("tutorial_times", rows)


if __name__ == "__main__":
    main()
