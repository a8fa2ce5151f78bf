"""Datasets and task samplers that work offline.

Importing this package registers the TFDS builders ``selfevo_glyphs`` with TFDS.
"""

from keras_selfevo.data.glyphs import GlyphsConfig, SelfevoGlyphs
from keras_selfevo.data.loading import LOCAL_BUILDERS, DatasetNotPreparedError, load
from keras_selfevo.data.tasks import sinusoid_tasks

__all__ = [
    "GlyphsConfig",
    "SelfevoGlyphs",
    "LOCAL_BUILDERS",
    "DatasetNotPreparedError",
    "load",
    "sinusoid_tasks",
]
