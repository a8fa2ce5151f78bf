"""CharRNN: a character language model trained as a SelfEvolvingModel."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_selfevo.layers import RecurrentBlock
from keras_selfevo.zoo.language_model import LanguageModel
from keras_selfevo.zoo.seeding import seeded


@keras.saving.register_keras_serializable(package="keras_selfevo")
class CharRNN(LanguageModel):
    """Embedding → recurrent layers → Dense over the vocabulary, with a sampler.

    Outputs ``{"self": logits, "policy": softmax(logits)}``, both ``[batch, time, vocab]``.
    Self-supervised training is next-token prediction: the self target is the next token
    ids (:func:`keras_selfevo.data.text.language_model_dataset` makes them), scored by
    default with their log-likelihood (or BCE against the one-hot, see :meth:`compile`).
    The self-evolution loop
    regresses ``"policy"`` toward the sampled tokens, weighted by reward.

    Args:
        vocab_size: Number of token ids; derived from ``vocabulary`` when that is given.
        vocabulary: The characters (ids follow ``<pad>``, ``<bos>``, ``<eos>``); lets
            :meth:`generate` take and return strings.
        embed_dim: Embedding width.
        units: Units of each recurrent layer.
        num_layers: Stacked recurrent layers.
        cell: ``"gru"``, ``"lstm"`` or ``"simple_rnn"``.
        dropout: Dropout on the recurrent layers' inputs.
        **kwargs: Base ``keras.Model`` arguments.
    """

    def __init__(self, vocab_size: int | None = None, vocabulary: str | None = None,
                 embed_dim: int = 32, units: int = 128, num_layers: int = 1, cell: str = "gru",
                 dropout: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self._set_vocabulary(vocab_size, vocabulary)
        self.embed_dim = embed_dim
        self.units = units
        self.num_layers = num_layers
        self.cell = cell
        self.dropout = dropout
        self.body = RecurrentBlock(self.vocab_size, embed_dim, units, num_layers, cell, dropout,
                                   dtype=self.dtype_policy, name="recurrent")
        self.head = keras.layers.Dense(self.vocab_size, dtype=self.dtype_policy, name="logits")

    def build(self, input_shape) -> None:
        self.body.build(input_shape)
        self.head.build(tuple(input_shape) + (self.units,))
        self.built = True

    def call(self, tokens, training: bool | None = None) -> dict:
        return self._outputs(self.logits(self.features(tokens, training=training)))

    def features(self, tokens, training: bool | None = None):
        """The recurrent layers' states ``[batch, time, units]``."""
        return self.body(tokens, training=training)

    def logits(self, features):
        """Next-token logits of :meth:`features`."""
        return self.head(features)

    # ------------------------------------------------------------------------- decoding
    def _step_logits(self, token_ids, states) -> tuple:
        output, states = self.body.step(token_ids, states)
        return self._outputs(self.head(output))["self"], states

    def decoding_start(self, tokens, start) -> tuple:
        """Run the recurrent layers over the prompt, one cell step per token; carry the state."""
        batch = tf.shape(tokens)[0]
        states = self.body.initial_states(batch)
        logits = tf.zeros([batch, self.vocab_size], tf.float32)

        def step(i, logits, states):
            logits, states = self._step_logits(tokens[:, i], states)
            return i + 1, logits, states

        _, logits, states = tf.while_loop(lambda i, *_: i < start, step,
                                          (tf.constant(0), logits, states))
        return logits, states

    def decoding_step(self, tokens, t, states) -> tuple:
        """One cell step on the token just sampled: the cost of a token does not grow."""
        return self._step_logits(tokens[:, t], states)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "units": self.units,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "dropout": self.dropout,
        }


def char_rnn(vocab_size: int | None = None, vocabulary: str | None = None, embed_dim: int = 32,
             units: int = 128, num_layers: int = 1, cell: str = "gru", dropout: float = 0.0,
             seed: int | None = None) -> CharRNN:
    """A character language model (:class:`CharRNN`), built; give a vocabulary or its size."""
    seeded(seed)
    model = CharRNN(vocab_size=vocab_size, vocabulary=vocabulary, embed_dim=embed_dim,
                    units=units, num_layers=num_layers, cell=cell, dropout=dropout)
    model.build((None, None))
    return model


# What the model reads from your own files (`keras-selfevo ... --data PATH`).
char_rnn.data_kind = "text"
