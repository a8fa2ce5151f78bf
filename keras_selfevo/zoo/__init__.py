"""Ready models: ``kse.zoo.build(name, **overrides)`` and ``kse.zoo.names()``."""

from keras_selfevo.zoo.adaptation import Adaptation, adapt
from keras_selfevo.zoo.char_rnn import CharRNN
from keras_selfevo.zoo.checkpoint import load_checkpoint
from keras_selfevo.zoo.gpt import GPT
from keras_selfevo.zoo.hub_language_model import HubLanguageModel
from keras_selfevo.zoo.language_model import LanguageModel
from keras_selfevo.zoo.presets import from_preset, list_presets, save_preset
from keras_selfevo.zoo.registry import arguments, build, data_kind, names
from keras_selfevo.zoo.tabular import TabularModel, tabular_arguments
from keras_selfevo.zoo.text_classifier import TextClassifier

__all__ = ["Adaptation", "CharRNN", "GPT", "HubLanguageModel", "LanguageModel", "TabularModel",
           "TextClassifier", "adapt", "arguments", "build", "data_kind", "from_preset",
           "list_presets", "load_checkpoint", "names", "save_preset", "tabular_arguments"]
