"""HubLanguageModel: a keras-hub causal language model as a SelfEvolvingModel policy."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import keras

from keras_selfevo._internal.lazy import keras_hub
from keras_selfevo.data import text
from keras_selfevo.zoo.language_model import LanguageModel
from keras_selfevo.zoo.seeding import seeded


@keras.saving.register_keras_serializable(package="keras_selfevo")
class HubLanguageModel(LanguageModel):
    """A keras-hub ``CausalLM`` (or a ``Backbone`` with a tied head) with the zoo's outputs.

    It gives a keras-hub model what the package's loops need from a policy: ``call`` on
    token ids ``[batch, time]`` returns ``{"self": logits, "policy": softmax(logits)}``, so
    :class:`~keras_selfevo.evolve.SelfEvolution`, :func:`~keras_selfevo.adapt`,
    :class:`~keras_selfevo.MetaLearner` and
    :func:`~keras_selfevo.export.export_for_serving` take it like the zoo's ``gpt``
    (the language-model behaviour comes from :class:`LanguageModel`). The network sees an
    all-ones ``padding_mask``: its attention is causal, so the positions after the ones it
    predicts never matter.

    ``network`` is either a ``keras_hub.models.CausalLM`` (its own head gives the logits)
    or a ``keras_hub.models.Backbone`` whose ``token_embedding`` is reversible (GPT-2,
    Llama, ...), whose transpose then gives the logits, as the keras-hub task models do.
    A model built from a config (e.g. ``keras_hub.models.GPT2Backbone(vocabulary_size=15,
    ...)``) downloads nothing; one from a preset (``GPT2CausalLM.from_preset(...)``) works
    the same way on a machine with network access, on its tokenizer's ids.

    Args:
        network: The keras-hub ``CausalLM`` or ``Backbone``.
        vocabulary: Characters for the string helpers (``generate`` on strings, text
            environments), when the network's ids are this package's character ids
            (``<pad>``, ``<bos>``, ``<eos>``, then the characters); ``None`` for a
            tokenizer's ids (ids in, ids out).
        **kwargs: Base ``keras.Model`` arguments.

    Example:
    >>> backbone = keras_hub.models.GPT2Backbone(vocabulary_size=15, num_layers=2,
    ...     num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=32)
    >>> model = HubLanguageModel(backbone, vocabulary="0123456789+=")
    >>> model.compile(optimizer="adam", alpha=0.5, reward_weighting="grpo")
    """

    def __init__(self, network: keras.Model, vocabulary: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        backbone = self._backbone_of(network)
        vocab_size = getattr(backbone, "vocabulary_size", None)
        self._set_vocabulary(vocab_size, vocabulary)
        self.network = network
        self.context_window = getattr(backbone, "max_sequence_length", None)

    @staticmethod
    def _backbone_of(network: Any) -> keras_hub.models.Backbone:
        if isinstance(network, keras_hub.models.CausalLM):
            return network.backbone
        if isinstance(network, keras_hub.models.Backbone):
            embedding = getattr(network, "token_embedding", None)
            if "reverse" in inspect.signature(getattr(embedding, "call", len)).parameters:
                return network  # keras's (or keras-hub's) ReversibleEmbedding
            raise ValueError(f"`network` {type(network).__name__} has no reversible "
                             "`token_embedding` to give logits: wrap its CausalLM instead.")
        raise ValueError("`network` must be a keras_hub.models.CausalLM or Backbone, got "
                         f"{type(network).__name__}.")

    def build(self, input_shape) -> None:
        if not self.network.built:
            self.network.build({"token_ids": input_shape, "padding_mask": input_shape})
        self.built = True

    def call(self, tokens, training: bool | None = None) -> dict:
        self._check_context(tokens)
        inputs = {"token_ids": tokens,
                  "padding_mask": keras.ops.ones_like(tokens, dtype="bool")}
        if isinstance(self.network, keras_hub.models.CausalLM):
            logits = self.network(inputs, training=training)
        else:
            hidden = self.network(inputs, training=training)
            logits = self.network.token_embedding(hidden, reverse=True)
        return self._outputs(logits)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("vocab_size")  # the network's
        return {**config, "network": keras.saving.serialize_keras_object(self.network)}

    @classmethod
    def from_config(cls, config: dict) -> HubLanguageModel:
        config = dict(config)
        with warnings.catch_warnings():
            # A keras-hub task compiles itself in __init__; its compile state is not ours
            # (this model compiles itself), so Keras's note that it skipped it is moot.
            warnings.filterwarnings("ignore", message=r".*`compile\(\)` was not called",
                                    category=UserWarning)
            config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


def hub_gpt2(vocab_size: int | None = None, vocabulary: str | None = None, num_layers: int = 2,
             num_heads: int = 2, hidden_dim: int = 64, intermediate_dim: int = 256,
             max_sequence_length: int = 64, dropout: float = 0.0,
             seed: int | None = None) -> HubLanguageModel:
    """keras-hub's ``GPT2Backbone``, built from its config (no download), as a policy.

    :class:`HubLanguageModel` gives it the zoo's ``"self"``/``"policy"`` outputs; pass any
    other keras-hub causal LM to that wrapper the same way.
    """
    seeded(seed)
    if vocab_size is None and vocabulary is None:
        raise ValueError("Give `vocab_size` or `vocabulary`.")
    size = vocab_size if vocabulary is None else text.vocab_size(vocabulary)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=size, num_layers=num_layers, num_heads=num_heads,
        hidden_dim=hidden_dim, intermediate_dim=intermediate_dim, dropout=dropout,
        max_sequence_length=max_sequence_length)
    model = HubLanguageModel(backbone, vocabulary=vocabulary)
    model.build((None, None))
    return model


# What the model reads from your own files (`keras-selfevo ... --data PATH`).
hub_gpt2.data_kind = "text"
