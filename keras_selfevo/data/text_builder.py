"""TFDS builder ``selfevo_text``: small languages generated locally, for language models.

Configs:
    ``dyck``: well-formed strings over ``()[]`` (the Dyck language with two bracket kinds),
    depth ≤ 4, length ≤ 24.
    ``arithmetic``: lines ``a+b=c`` with ``a, b`` in [0, 99] and the correct sum.

Each example is ``{"text": str}``. The data are drawn from NumPy generators seeded per
split, so the same config always gives the same strings; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from keras_selfevo.data.text_corpora import (
    ARITHMETIC_VOCABULARY,
    DYCK_VOCABULARY,
    arithmetic_line,
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
    split_sizes: tuple[int, int, int] = (20000, 1000, 1000)
    seed: int = 0


class SelfevoText(tfds.core.GeneratorBasedBuilder):
    """Generated text corpora; registered with TFDS as ``selfevo_text``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
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
        return {
            split: self._generate_examples(index, size)
            for index, (split, size) in enumerate(zip(_SPLITS, config.split_sizes))
        }

    def _generate_examples(self, split_index: int, size: int):
        config: TextConfig = self.builder_config
        rng = np.random.default_rng([config.seed, split_index])
        for index in range(size):
            if config.language == "dyck":
                line = dyck_string(rng, config.max_length)
            else:
                line = arithmetic_line(rng)
            yield index, {"text": line}


def vocabulary_of(name: str) -> str:
    """The vocabulary of a ``selfevo_text/<config>`` name."""
    config = name.split("/")[1].split(":")[0] if "/" in name else SelfevoText.DEFAULT_CONFIG_NAME
    for builder_config in SelfevoText.BUILDER_CONFIGS:
        if builder_config.name == config:
            return builder_config.vocabulary
    raise ValueError(f"Unknown selfevo_text config in {name!r}.")
