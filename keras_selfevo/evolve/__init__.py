"""Self-evolution: generate or act → score with a reward → learn → repeat."""

from keras_selfevo.evolve import rewards

__all__ = ["rewards"]
