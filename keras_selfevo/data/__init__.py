"""Datasets and task samplers that work offline.

Importing this package registers the TFDS builders ``selfevo_glyphs``, ``selfevo_digits``,
``selfevo_text``, ``selfevo_shakespeare`` and ``selfevo_speakers``.
"""

from keras_selfevo.data import shakespeare, text
from keras_selfevo.data.digits import SelfevoDigits
from keras_selfevo.data.episodes import episodes
from keras_selfevo.data.glyphs import GlyphsConfig, SelfevoGlyphs
from keras_selfevo.data.image_folder import from_directory
from keras_selfevo.data.language_data import shakespeare_streams, text_tasks, window_batches
from keras_selfevo.data.loading import LOCAL_BUILDERS, DatasetNotPreparedError, load
from keras_selfevo.data.mnist_files import prepare_mnist
from keras_selfevo.data.shakespeare import SelfevoShakespeare
from keras_selfevo.data.sinusoid import sinusoid_tasks
from keras_selfevo.data.speakers import SelfevoSpeakers, speaker_tasks
from keras_selfevo.data.table import from_table
from keras_selfevo.data.text_builder import SelfevoText, TextConfig
from keras_selfevo.data.text_files import from_labelled_texts, from_text

__all__ = [
    "GlyphsConfig",
    "SelfevoDigits",
    "SelfevoGlyphs",
    "LOCAL_BUILDERS",
    "DatasetNotPreparedError",
    "episodes",
    "from_directory",
    "from_labelled_texts",
    "from_table",
    "from_text",
    "load",
    "prepare_mnist",
    "shakespeare",
    "shakespeare_streams",
    "sinusoid_tasks",
    "speaker_tasks",
    "SelfevoShakespeare",
    "SelfevoSpeakers",
    "SelfevoText",
    "TextConfig",
    "text",
    "text_tasks",
    "window_batches",
]
