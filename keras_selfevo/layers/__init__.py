"""Reusable Keras layers, one public class per file; all registered with keras.saving."""

from keras_selfevo.layers.random_masking import RandomMasking

__all__ = ["RandomMasking"]
