"""TextClassifier: a character language model's body with a classification head."""

from __future__ import annotations

from typing import Any

import keras

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import text
from keras_selfevo.training import SelfEvolvingModel
from keras_selfevo.zoo.char_rnn import CharRNN
from keras_selfevo.zoo.gpt import GPT
from keras_selfevo.zoo.language_model import LanguageModel
from keras_selfevo.zoo.seeding import seeded

BODIES = {"char_rnn": CharRNN, "gpt": GPT}


@keras.saving.register_keras_serializable(package="keras_selfevo")
class TextClassifier(SelfEvolvingModel):
    """Texts → class probabilities, trained beside the next-token log-likelihood of the texts.

    Input: token ids ``[batch, 1 + length]`` (``<bos>``, the characters, ``<pad>``; see
    :func:`keras_selfevo.data.from_labelled_texts`). A language model of the zoo (``body``:
    ``char_rnn`` or ``gpt``, which reads the text in windows of its block size) gives a state
    per character; their mean over the text's characters feeds a softmax head (``"policy"``).
    The body also predicts each next character (``"self"`` logits against ``"self_target"``,
    the text shifted by one, padding ignored), so every text, labelled or not, trains it
    through the self-loss; the labels train the head and the body through the reinforce
    term (``reinforce_loss="log_likelihood"`` with reward 1: the cross-entropy).

    Args:
        language_model: The body, a built zoo language model (e.g. a pretrained one).
        num_classes: Classes of the head.
        **kwargs: Base ``keras.Model`` arguments.
    """

    default_alpha = 0.5
    default_self_loss = "sparse_categorical_crossentropy"
    self_output_is_logits = True
    default_self_ignore_class = text.PAD
    checks_inputs_in_pipeline = True

    def __init__(self, language_model: LanguageModel, num_classes: int, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(language_model, (CharRNN, GPT)):
            raise ValueError("`language_model` must be a zoo char_rnn or gpt, got "
                             f"{type(language_model).__name__}.")
        self.num_classes = _checks.int_at_least(num_classes, "num_classes", 2)
        self.language_model = language_model
        self.vocab_size = language_model.vocab_size
        self.head = keras.layers.Dense(self.num_classes, activation="softmax", name="policy")

    def build(self, input_shape) -> None:
        width = getattr(self.language_model, "width", None) or self.language_model.units
        self.head.build((None, width))
        self.built = True

    def _windows(self, tokens):
        """``tokens`` cut into the body's block size (a GPT reads at most a block)."""
        block = self.language_model.context_window
        if block is None:
            return tokens, None
        length = keras.ops.shape(tokens)[1]
        padded = keras.ops.pad(tokens, [[0, 0], [0, (-length) % block]])
        return keras.ops.reshape(padded, (-1, block)), keras.ops.shape(padded)

    def call(self, tokens, training: bool | None = None) -> dict:
        pooled, logits = self._pooled_and_logits(tokens, training)
        outputs = self.language_model._outputs(logits)
        return {"self": outputs["self"], "self_target": tokens[:, 1:],
                "policy": self.head(pooled)}

    def features(self, tokens, training: bool | None = None):
        """The text's features ``[batch, width]``: the body's mean state over its characters.

        What the head reads; class means of them are prototypes for few-shot
        classification without training.
        """
        return self._pooled_and_logits(tokens, training)[0]

    def _pooled_and_logits(self, tokens, training: bool | None) -> tuple:
        inputs = tokens[:, :-1]
        windows, padded_shape = self._windows(inputs)
        states = self.language_model.features(windows, training=training)
        logits = self.language_model.logits(states)
        if padded_shape is not None:
            length = keras.ops.shape(inputs)[1]
            states = keras.ops.reshape(states, (padded_shape[0], -1, states.shape[-1]))
            logits = keras.ops.reshape(logits, (padded_shape[0], -1, logits.shape[-1]))
            states, logits = states[:, :length], logits[:, :length]
        # The mean state over the text's characters (its <bos> included, padding not).
        counted = keras.ops.cast(keras.ops.not_equal(inputs, text.PAD), states.dtype)[..., None]
        pooled = (keras.ops.sum(states * counted, axis=1)
                  / keras.ops.maximum(keras.ops.sum(counted, axis=1), 1.0))
        return pooled, logits

    def meta_task(self) -> tuple[str, keras.losses.Loss]:
        """What :class:`~keras_selfevo.MetaLearner` adapts: ``("policy", loss)``.

        The class probabilities, scored by the cross-entropy with the class labels.
        """
        return "policy", keras.losses.SparseCategoricalCrossentropy()

    def input_value_checks(self, x: Any):
        return self.language_model.input_value_checks(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes,
                "language_model": keras.saving.serialize_keras_object(self.language_model)}

    @classmethod
    def from_config(cls, config: dict) -> TextClassifier:
        config = dict(config)
        config["language_model"] = keras.saving.deserialize_keras_object(
            config["language_model"])
        return cls(**config)


def text_classifier(vocabulary: str | None = None, num_classes: int = 2,
                    body: str = "char_rnn", pretrained: Any = None,
                    body_args: dict[str, Any] | None = None,
                    seed: int | None = None) -> TextClassifier:
    """A :class:`TextClassifier` on a new or a pretrained language model.

    Args:
        vocabulary: The characters (a pretrained body brings its own).
        num_classes: Classes of the head.
        body: ``"char_rnn"`` or ``"gpt"``, for a new body.
        pretrained: A zoo language model (or the path of a ``.keras`` one) to start from;
            its vocabulary and architecture are kept.
        body_args: Arguments of the new body's builder (e.g. ``{"units": 256}``).
        seed: Seeds the initial weights.
    """
    seeded(seed)
    if pretrained is not None:
        if isinstance(pretrained, str):
            from keras_selfevo.zoo.checkpoint import load_checkpoint

            pretrained = load_checkpoint(pretrained)
        if not isinstance(pretrained, (CharRNN, GPT)) or pretrained.vocabulary is None:
            raise ValueError("`pretrained` must be a zoo char_rnn or gpt with a vocabulary; "
                             f"got {type(pretrained).__name__}.")
        language_model = pretrained.copy()
    else:
        _checks.one_of(body, "body", tuple(BODIES))
        if vocabulary is None:
            raise ValueError("Give `vocabulary` (or a `pretrained` language model).")
        language_model = BODIES[body](vocabulary=vocabulary, **(body_args or {}))
        language_model.build((None, None))
    model = TextClassifier(language_model, num_classes)
    model.build((None, None))
    return model


# What the model reads from your own files (`keras-selfevo ... --data PATH`).
text_classifier.data_kind = "labelled_texts"
