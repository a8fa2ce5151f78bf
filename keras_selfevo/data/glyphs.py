"""TFDS builder ``selfevo_glyphs``: an Omniglot-like few-shot dataset drawn locally.

``tfds.load("selfevo_glyphs")`` works once :mod:`keras_selfevo` is imported: the data are
generated on the machine (no download) and are byte-identical for the same seed.

Classes are grouped into alphabets. In the few-shot configs the train / validation / test
splits hold disjoint alphabets, so their class sets never overlap (as Omniglot's background
and evaluation sets do). The ``classify10`` config is for ordinary classification: 10
classes in every split, the splits holding different drawings. ``label`` is the global
class id, ``alphabet`` the alphabet id.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from keras_selfevo.data.glyph_drawing import IMAGE_SIZE, draw_class
from keras_selfevo.data.local_builder import LocalBuilder

_DESCRIPTION = """
Procedurally drawn 28x28 grayscale glyphs for few-shot learning. Each class is a random
composition of 2-4 Bezier strokes from its alphabet's stroke pool; each sample is drawn
again with control-point wobble, a random affine distortion, stroke width and pixel
noise. Ink is bright (255) on a dark background. Splits hold disjoint alphabets.
"""


@dataclasses.dataclass
class GlyphsConfig(tfds.core.BuilderConfig):
    """Size and seed of a ``selfevo_glyphs`` variant.

    Attributes:
        seed: Everything drawn derives from it.
        alphabets_per_split: Alphabets in the train, validation and test splits.
        chars_per_alphabet: Classes per alphabet.
        samples_per_class: Drawings of each class.
        sample_splits: For classification configs: drawings of each class in the train,
            validation and test splits, which then share all classes (the alphabets of
            ``alphabets_per_split`` are pooled). ``None``: splits by alphabet.
    """

    seed: int = 0
    alphabets_per_split: tuple[int, int, int] = (40, 5, 15)
    chars_per_alphabet: int = 20
    samples_per_class: int = 20
    sample_splits: tuple[int, int, int] | None = None

    @property
    def num_alphabets(self) -> int:
        """Alphabets over all splits."""
        return sum(self.alphabets_per_split)

    @property
    def num_classes(self) -> int:
        """Classes over all splits."""
        return self.num_alphabets * self.chars_per_alphabet

    def split_alphabets(self) -> dict[str, range]:
        """The alphabet ids of each split, consecutive and disjoint."""
        names = ("train", "validation", "test")
        bounds = np.cumsum((0,) + tuple(self.alphabets_per_split))
        return {name: range(lo, hi) for name, lo, hi in zip(names, bounds[:-1], bounds[1:])}


class SelfevoGlyphs(LocalBuilder):
    """Omniglot-like glyphs generated locally; registered with TFDS as ``selfevo_glyphs``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        GlyphsConfig(
            name="default",
            description="1200 classes (60 alphabets x 20), 20 samples each; 800/100/300 classes.",
        ),
        GlyphsConfig(
            name="small",
            description="For tests: 30 classes (6 alphabets x 5), 20 samples each; 20/5/5.",
            alphabets_per_split=(4, 1, 1),
            chars_per_alphabet=5,
        ),
        GlyphsConfig(
            name="classify10",
            description="Classification: 10 classes; 1000/100/100 drawings of each per split.",
            alphabets_per_split=(1, 0, 0),
            chars_per_alphabet=10,
            samples_per_class=1200,
            sample_splits=(1000, 100, 100),
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        config: GlyphsConfig = self.builder_config
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
                    "label": tfds.features.ClassLabel(num_classes=config.num_classes),
                    "alphabet": tfds.features.ClassLabel(num_classes=config.num_alphabets),
                    "sample": np.int32,
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Everything is generated here; nothing is downloaded.
        config: GlyphsConfig = self.builder_config
        if config.sample_splits is None:
            return {
                split: self._generate_examples(alphabets, range(config.samples_per_class))
                for split, alphabets in config.split_alphabets().items()
            }
        bounds = np.cumsum((0,) + tuple(config.sample_splits))
        everything = range(config.num_alphabets)
        return {
            split: self._generate_examples(everything, range(lo, hi))
            for split, lo, hi in zip(("train", "validation", "test"), bounds[:-1], bounds[1:])
        }

    def _generate_examples(self, alphabets: range, samples: range):
        config: GlyphsConfig = self.builder_config
        for alphabet in alphabets:
            for char in range(config.chars_per_alphabet):
                label = alphabet * config.chars_per_alphabet + char
                images = draw_class(config.seed, alphabet, label, len(samples), samples.start)
                for sample, image in zip(samples, images):
                    yield f"{label}_{sample}", {
                        "image": image,
                        "label": label,
                        "alphabet": alphabet,
                        "sample": sample,
                    }
