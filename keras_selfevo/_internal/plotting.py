"""Small matplotlib helpers that write PNGs (no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_curves(history: Mapping[str, Sequence[float]], keys: Sequence[str], path: str,
                title: str, xlabel: str = "epoch", first: int = 1) -> None:
    """Plot ``history[key]`` against ``first``, ``first + 1``, ... for each key present."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in keys:
        if key in history:
            ax.plot(range(first, len(history[key]) + first), history[key], marker="o", label=key)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend()
    fig.savefig(path, bbox_inches="tight", dpi=100)
    plt.close(fig)
