"""The zoo's registry: a name → a builder function with keyword arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras

from keras_selfevo import _checks
from keras_selfevo._lazy import keras_hub
from keras_selfevo.data import text
from keras_selfevo.layers import ConvBlock, PseudoLabel, RandomMasking
from keras_selfevo.training import SelfEvolvingModel
from keras_selfevo.zoo.char_rnn import CharRNN
from keras_selfevo.zoo.gpt import GPT
from keras_selfevo.zoo.hub_language_model import HubLanguageModel

_BUILDERS: dict[str, Callable[..., keras.Model]] = {}
_COMMANDS: dict[str, tuple[str, ...]] = {}
DOWNSAMPLES = ("pool", "stride")
DECODERS = ("dense", "conv")
SELF_TASKS = ("reconstruct", "consistency")
SELF_GRADIENTS = ("shared", "head")


def _register(name: str, commands: tuple[str, ...]):
    """Register a builder under ``name``; ``commands`` are the CLI commands that train it."""

    def wrap(fn):
        _BUILDERS[name] = fn
        _COMMANDS[name] = commands
        return fn

    return wrap


def _seeded(seed: int | None) -> None:
    if seed is not None:
        keras.utils.set_random_seed(seed)


@_register("mnist_cnn", ("train", "evolve"))
def mnist_cnn(input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10,
              filters: int = 32, units: int = 64, mask_rate: float = 0.25,
              decoder: str = "dense", policy_input: str = "masked",
              self_task: str = "reconstruct", shift: float = 0.1, rotation: float = 0.04,
              confidence: float | None = None, self_gradient: str = "shared",
              seed: int | None = None) -> SelfEvolvingModel:
    """A small CNN with a masked-reconstruction "self" head and a class-score "policy" head.

    Input → RandomMasking → Conv2D(filters, 3×3, ReLU) → MaxPool 2 → Flatten → Dense(units,
    ReLU) → {"self": the reconstruction, "policy": Dense(num_classes, softmax), "mask": the
    masking layer's mask}. Compile with ``masked_self_loss=True`` to score masked pixels only.

    Args:
        input_shape: Image shape ``(height, width, channels)``.
        num_classes: Classes of the policy head.
        filters: Channels of the convolution.
        units: Width of the dense layer the policy reads.
        mask_rate: Share of input pixels masked during training.
        decoder: Where the reconstruction comes from. ``"dense"``: Dense(prod(input_shape),
            sigmoid) on the ``units``-wide layer, which the policy shares. ``"conv"``: a 3×3
            transposed convolution (sigmoid) on the convolution's feature map, so the self
            head fills each masked pixel from its neighbourhood and the dense layer is the
            policy's alone.
        policy_input: What the policy reads during training. ``"masked"``: the masked image
            the self head reads (one pass). ``"clean"``: the image itself, through the same
            layers applied a second time (the convolution; with the dense decoder also the
            pooling and the dense layer), so masking trains the self head only and the
            classifier trains on what it will be asked about (outside training both read
            the image).
        self_task: ``"reconstruct"``: the self head reconstructs the masked pixels, as
            above. ``"consistency"``: the self head is the classifier itself on a perturbed
            view of the image (shifted by up to ``shift`` of its size, rotated by up to
            ``rotation`` of a turn, then ``mask_rate`` of its pixels masked) and the
            model's ``"self_target"`` output is the classifier's prediction on the clean
            image, so the self-loss (BCE, no labels needed) asks for the same class
            scores on both views. ``decoder`` and ``policy_input`` do not apply; the
            ``"mask"`` output is there only with ``confidence``.
        shift: With ``"consistency"``, the largest shift, as a fraction of height and width.
        rotation: With ``"consistency"``, the largest rotation, as a fraction of a turn.
        confidence: With ``"consistency"``: ``None`` makes the clean prediction itself the
            target; a threshold in (0, 1] makes it the one-hot predicted class of the
            images predicted with at least that confidence, the others left out through a
            ``"mask"`` output (:class:`~keras_selfevo.layers.PseudoLabel`; compile with
            ``masked_self_loss=True``).
        self_gradient: With ``"reconstruct"``: ``"shared"``, the self-loss trains the self
            head and the layers below it that the policy also uses (the convolution; with
            the dense decoder also the dense layer); ``"head"``, the self head reads those
            layers through ``stop_gradient``, so the self-loss trains the head alone and the
            classifier's layers learn from the policy term only (the choice with every
            image labeled: the model learns to inpaint at no cost to its accuracy).
        seed: Seeds the initial weights and the random perturbations.
    """
    _checks.one_of(decoder, "decoder", DECODERS)
    _checks.one_of(self_gradient, "self_gradient", SELF_GRADIENTS)
    _checks.one_of(policy_input, "policy_input", ("masked", "clean"))
    _checks.one_of(self_task, "self_task", SELF_TASKS)
    _checks.number(shift, "shift", 0.0, 1.0, high_open=True, kind="a float")
    _checks.number(rotation, "rotation", 0.0, 1.0, high_open=True, kind="a float")
    _checks.number(confidence, "confidence", 0.0, 1.0, low_open=True, kind="a float",
                   allow_none=True)
    _seeded(seed)
    input_shape = tuple(input_shape)
    inputs = keras.Input(input_shape, name="image")
    if self_task == "consistency":
        return _consistency_cnn(inputs, num_classes, filters, units, mask_rate, shift,
                                rotation, confidence, seed)
    corrupted, mask = RandomMasking(rate=mask_rate, seed=seed, name="masking")(inputs)
    conv = keras.layers.Conv2D(filters, 3, activation="relu", name="conv")
    pool = keras.layers.MaxPooling2D(2, name="pool")
    flatten = keras.layers.Flatten(name="flatten")
    dense = keras.layers.Dense(units, activation="relu", name="hidden")
    features = conv(corrupted)
    code = lambda maps: dense(flatten(pool(maps)))  # noqa: E731
    h = code(conv(inputs) if policy_input == "clean" else features)
    head_only = (keras.ops.stop_gradient if self_gradient == "head"
                 else lambda tensor: tensor)
    if decoder == "conv":
        recon = keras.layers.Conv2DTranspose(input_shape[-1], 3, activation="sigmoid",
                                             name="self")(head_only(features))
    else:
        size = 1
        for dim in input_shape:
            size *= dim
        # The masked image's code: the policy's own when it reads the masked image.
        encoded = code(features) if policy_input == "clean" else h
        recon = keras.layers.Dense(size, activation="sigmoid",
                                   name="reconstruction")(head_only(encoded))
        recon = keras.layers.Reshape(input_shape, name="self")(recon)
    return SelfEvolvingModel(
        inputs,
        {
            "self": recon,
            "policy": keras.layers.Dense(num_classes, activation="softmax", name="policy")(h),
            "mask": mask,
        },
        name="mnist_cnn",
    )


def _consistency_cnn(inputs: keras.KerasTensor, num_classes: int, filters: int, units: int,
                     mask_rate: float, shift: float, rotation: float,
                     confidence: float | None, seed: int | None) -> SelfEvolvingModel:
    """``mnist_cnn``'s network with a consistency self head (see its ``self_task``)."""
    view = inputs
    if shift:
        view = keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed,
                                              name="shift")(view)
    if rotation:
        view = keras.layers.RandomRotation(rotation, fill_mode="constant",
                                           seed=None if seed is None else seed + 1,
                                           name="rotation")(view)
    view, _ = RandomMasking(rate=mask_rate, seed=None if seed is None else seed + 2,
                            name="masking")(view)
    layers = [keras.layers.Conv2D(filters, 3, activation="relu", name="conv"),
              keras.layers.MaxPooling2D(2, name="pool"),
              keras.layers.Flatten(name="flatten"),
              keras.layers.Dense(units, activation="relu", name="hidden"),
              keras.layers.Dense(num_classes, activation="softmax", name="policy")]

    def classify(image):
        for layer in layers:
            image = layer(image)
        return image

    policy = classify(inputs)
    outputs = {"self": keras.layers.Identity(name="self")(classify(view)), "policy": policy}
    if confidence is None:
        outputs["self_target"] = keras.layers.Identity(name="self_target")(policy)
    else:
        outputs["self_target"], outputs["mask"] = PseudoLabel(confidence,
                                                              name="pseudo_label")(policy)
    return SelfEvolvingModel(inputs, outputs, name="mnist_cnn")


@_register("conv4", ("meta-train",))
def conv4(num_classes: int = 5, input_shape: tuple[int, ...] = (28, 28, 1), filters: int = 64,
          normalization: str | None = "batch", downsample: str = "pool",
          seed: int | None = None) -> keras.Model:
    """The MAML few-shot network: 4 × ConvBlock(filters) → features → Dense(num_classes) logits.

    Args:
        num_classes: Ways of the task (logits).
        input_shape: Image shape.
        filters: Channels of every block.
        normalization: ``"batch"`` or ``None`` (see :class:`~keras_selfevo.layers.ConvBlock`).
        downsample: ``"pool"``: each block ends with 2×2 max pooling and the last map is
            flattened (MAML's MiniImageNet form). ``"stride"``: stride-2 convolutions and a
            mean over the last map (MAML's and learn2learn's Omniglot form; on 28×28 inputs
            about 3.7× fewer multiply-adds).
        seed: Seeds the initial weights.
    """
    if downsample not in DOWNSAMPLES:
        raise ValueError(f"`downsample` must be one of {DOWNSAMPLES}, got {downsample!r}.")
    _seeded(seed)
    strided = downsample == "stride"
    blocks = [ConvBlock(filters, normalization=normalization, pool=not strided,
                        strides=2 if strided else 1, name=f"block{i}") for i in range(4)]
    features = (keras.layers.GlobalAveragePooling2D(name="mean") if strided
                else keras.layers.Flatten(name="flatten"))
    return keras.Sequential(
        [keras.Input(tuple(input_shape), name="image"), *blocks, features,
         keras.layers.Dense(num_classes, name="logits")],
        name="conv4",
    )


@_register("char_rnn", ("train", "evolve", "meta-train"))
def char_rnn(vocab_size: int | None = None, vocabulary: str | None = None, embed_dim: int = 32,
             units: int = 128, num_layers: int = 1, cell: str = "gru", dropout: float = 0.0,
             seed: int | None = None) -> CharRNN:
    """A character language model (:class:`CharRNN`), built; give a vocabulary or its size."""
    _seeded(seed)
    model = CharRNN(vocab_size=vocab_size, vocabulary=vocabulary, embed_dim=embed_dim,
                    units=units, num_layers=num_layers, cell=cell, dropout=dropout)
    model.build((None, None))
    return model


@_register("gpt", ("train", "evolve", "meta-train"))
def gpt(vocab_size: int | None = None, vocabulary: str | None = None, num_layers: int = 4,
        num_heads: int = 4, width: int = 128, block_size: int = 64, dropout: float = 0.0,
        seed: int | None = None) -> GPT:
    """A decoder-only Transformer on keras-hub layers (:class:`GPT`), built.

    The defaults are nanoGPT's CPU "baby GPT": 4 layers, 4 heads, width 128, block 64.
    """
    _seeded(seed)
    model = GPT(vocab_size=vocab_size, vocabulary=vocabulary, num_layers=num_layers,
                num_heads=num_heads, width=width, block_size=block_size, dropout=dropout)
    model.build((None, None))
    return model


@_register("hub_gpt2", ("train", "evolve", "meta-train"))
def hub_gpt2(vocab_size: int | None = None, vocabulary: str | None = None, num_layers: int = 2,
             num_heads: int = 2, hidden_dim: int = 64, intermediate_dim: int = 256,
             max_sequence_length: int = 64, dropout: float = 0.0,
             seed: int | None = None) -> HubLanguageModel:
    """keras-hub's ``GPT2Backbone``, built from its config (no download), as a policy.

    :class:`HubLanguageModel` gives it the zoo's ``"self"``/``"policy"`` outputs; pass any
    other keras-hub causal LM to that wrapper the same way.
    """
    _seeded(seed)
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


@_register("sinusoid_mlp", ("meta-train",))
def sinusoid_mlp(hidden: tuple[int, ...] = (40, 40), seed: int | None = None) -> keras.Model:
    """The MAML regression network: 1 → hidden (ReLU) → 1; default 1-40-40-1."""
    _seeded(seed)
    return keras.Sequential(
        [keras.Input((1,), name="x")]
        + [keras.layers.Dense(units, activation="relu", name=f"dense{i}")
           for i, units in enumerate(hidden)]
        + [keras.layers.Dense(1, name="y")],
        name="sinusoid_mlp",
    )


def names() -> list[str]:
    """The names :func:`build` accepts."""
    return sorted(_BUILDERS)


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise ValueError(f"Unknown zoo model `name`={name!r}; expected one of {names()}.")


def arguments(name: str) -> set[str]:
    """The keyword arguments the builder of ``name`` accepts."""
    _check_name(name)
    return set(inspect.signature(_BUILDERS[name]).parameters)


def commands(name: str) -> tuple[str, ...]:
    """The CLI commands that train the model ``name`` (``train``, ``evolve``, ``meta-train``)."""
    _check_name(name)
    return _COMMANDS[name]


def build(name: str, **overrides: Any) -> keras.Model:
    """Build a ready model by name, with keyword overrides of its defaults.

    Args:
        name: One of :func:`names`.
        **overrides: Arguments of the model's builder (see its docstring), e.g.
            ``num_classes=5``.

    Raises:
        ValueError: an unknown name or argument.
    """
    accepted = arguments(name)
    builder = _BUILDERS[name]
    unknown = set(overrides) - accepted
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {sorted(unknown)} for zoo model {name!r}; it accepts "
            f"{sorted(accepted)}."
        )
    return builder(**overrides)
