"""Ready models: ``kse.zoo.build(name, **overrides)`` and ``kse.zoo.names()``."""

from keras_selfevo.zoo.char_rnn import CharRNN
from keras_selfevo.zoo.registry import arguments, build, commands, names

__all__ = ["CharRNN", "arguments", "build", "commands", "names"]
