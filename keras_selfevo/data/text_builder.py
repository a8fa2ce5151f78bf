"""TFDS builder ``selfevo_text``: small languages generated locally, for language models.

Configs:
    ``dyck``: well-formed strings over ``()[]`` (the Dyck language with two bracket kinds),
    depth ≤ 4, length ≤ 24.
    ``arithmetic``: lines ``a+b=c`` with ``a, b`` in [0, 99] and the correct sum.

Each example is ``{"text": str}``. The data are drawn from NumPy generators seeded by the
config, so the same config always gives the same strings; nothing is downloaded.

From version 2.0.0 the splits are disjoint and hold each string once, so that a held-out
score measures skill, not recall: ``arithmetic`` holds out (a, b) pairs (8,000 train,
1,000 validation, 1,000 test: every pair exactly once), ``dyck`` assigns each distinct
string to one split by a hash of it. (Version 1.0.0 drew each split on its own: 85.7% of
its arithmetic test lines and 43.1% of its Dyck test strings also occurred in train.)
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import tensorflow_datasets as tfds

from keras_selfevo.data.local_builder import LocalBuilder
from keras_selfevo.data.text_corpora import (
    ARITHMETIC_VOCABULARY,
    DYCK_VOCABULARY,
    dyck_string,
)

_SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class TextConfig(tfds.core.BuilderConfig):
    """A language of ``selfevo_text``.

    Attributes:
        language: ``"dyck"`` or ``"arithmetic"``.
        vocabulary: The characters of the language.
        max_length: Longest string, in characters.
        split_sizes: Strings in the train, validation and test splits.
        seed: Everything drawn derives from it.
    """

    language: str = "dyck"
    vocabulary: str = DYCK_VOCABULARY
    max_length: int = 24
    split_sizes: tuple[int, int, int] = (20000, 1000, 1000)  # Dyck; arithmetic: all pairs
    seed: int = 0



class SelfevoText(LocalBuilder):
    """Generated text corpora; registered with TFDS as ``selfevo_text``."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "2.0.0": "Disjoint, deduplicated splits: arithmetic holds out (a, b) pairs; each "
                 "distinct Dyck string belongs to one split.",
    }
    BUILDER_CONFIGS = [
        TextConfig(name="dyck", description="Dyck strings over ()[], depth ≤ 4, length ≤ 24."),
        TextConfig(name="arithmetic", description="Lines a+b=c with a, b in [0, 99].",
                   language="arithmetic", vocabulary=ARITHMETIC_VOCABULARY, max_length=9),
    ]
    DEFAULT_CONFIG_NAME = "dyck"

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="Small generated languages for character language models.",
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            metadata=tfds.core.MetadataDict(vocabulary=self.builder_config.vocabulary),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Generated here; nothing is downloaded.
        config: TextConfig = self.builder_config
        if config.language == "arithmetic":
            lines = disjoint_arithmetic_splits(config.seed)
        else:
            lines = disjoint_dyck_splits(config.seed, config.split_sizes, config.max_length)
        return {split: self._generate_examples(lines[split]) for split in _SPLITS}

    def _generate_examples(self, lines: list[str]):
        for index, line in enumerate(lines):
            yield index, {"text": line}


def disjoint_arithmetic_splits(seed: int = 0, max_operand: int = 99) -> dict[str, list[str]]:
    """The arithmetic splits: every pair ``(a, b)`` exactly once.

    The first 1,000 pairs of a seeded shuffle are test, the next 1,000 validation, the
    rest train.
    """
    side = max_operand + 1
    order = np.random.default_rng([seed, 99]).permutation(side * side)
    lines = [f"{i // side}+{i % side}={i // side + i % side}" for i in order]
    return {"test": lines[:1000], "validation": lines[1000:2000], "train": lines[2000:]}


def disjoint_dyck_splits(seed: int, sizes: tuple[int, int, int],
                         max_length: int) -> dict[str, list[str]]:
    """The Dyck splits: distinct strings, drawn until every split is full.

    Each string goes to the split its CRC-32 picks (1/22 test, 1/22 validation, the rest
    train), so no string is in two splits.
    """
    rng = np.random.default_rng([seed, 98])
    wanted = dict(zip(_SPLITS, sizes))
    splits: dict[str, list[str]] = {split: [] for split in _SPLITS}
    seen: set[str] = set()
    while any(len(splits[s]) < wanted[s] for s in _SPLITS):
        line = dyck_string(rng, max_length)
        if line in seen:
            continue
        seen.add(line)
        bucket = zlib.crc32(line.encode()) % 22
        split = "test" if bucket == 0 else "validation" if bucket == 1 else "train"
        if len(splits[split]) < wanted[split]:
            splits[split].append(line)
    return splits


def vocabulary_of(name: str) -> str:
    """The vocabulary of a ``selfevo_text/<config>`` name."""
    config = name.split("/")[1].split(":")[0] if "/" in name else SelfevoText.DEFAULT_CONFIG_NAME
    for builder_config in SelfevoText.BUILDER_CONFIGS:
        if builder_config.name == config:
            return builder_config.vocabulary
    raise ValueError(f"Unknown selfevo_text config in {name!r}.")
