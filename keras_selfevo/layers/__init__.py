"""Reusable Keras layers, one public class per file; all registered with keras.saving."""

from keras_selfevo.layers.conv_block import ConvBlock
from keras_selfevo.layers.fused_batch_norm import FusedBatchNormalization
from keras_selfevo.layers.pseudo_label import PseudoLabel
from keras_selfevo.layers.random_masking import RandomMasking
from keras_selfevo.layers.recurrent_block import RecurrentBlock
from keras_selfevo.layers.token_sampler import TokenSampler, sample_tokens

__all__ = ["ConvBlock", "FusedBatchNormalization", "PseudoLabel", "RandomMasking",
           "RecurrentBlock", "TokenSampler", "sample_tokens"]
