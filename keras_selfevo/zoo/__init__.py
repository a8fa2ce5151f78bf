"""Ready models: ``kse.zoo.build(name, **overrides)`` and ``kse.zoo.names()``."""

from keras_selfevo.zoo.char_rnn import CharRNN
from keras_selfevo.zoo.gpt import GPT
from keras_selfevo.zoo.hub_language_model import HubLanguageModel
from keras_selfevo.zoo.language_model import LanguageModel
from keras_selfevo.zoo.registry import arguments, build, commands, names

__all__ = ["CharRNN", "GPT", "HubLanguageModel", "LanguageModel", "arguments", "build",
           "commands", "names"]
