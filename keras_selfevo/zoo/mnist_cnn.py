"""mnist_cnn: a small self-evolving CNN (masked reconstruction or consistency self task)."""

from __future__ import annotations

import keras

from keras_selfevo._internal import checks as _checks
from keras_selfevo.layers import PseudoLabel, RandomMasking
from keras_selfevo.training import SelfEvolvingModel
from keras_selfevo.zoo.seeding import seeded

DECODERS = ("dense", "conv")
SELF_TASKS = ("reconstruct", "consistency")
SELF_GRADIENTS = ("shared", "head")


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
    seeded(seed)
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


# What the model reads from your own files (`keras-selfevo ... --data PATH`).
mnist_cnn.data_kind = "images"
