"""A folder of images in class subfolders (Keras's ``image_dataset_from_directory`` layout).

``my_images/cat/*.png``, ``my_images/dog/*.jpg``: the subfolders, in sorted order, are the
classes. Images under ``my_images/unlabeled/`` have no label: they train the self-loss only.
PNG, JPEG, BMP and GIF (its first frame) of any size, grey or colour.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo.data.own_data import (
    OwnData,
    check_path,
    classification_rows,
    split_rows,
    stratified_split,
    to_dataset,
)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
UNLABELED = "unlabeled"


def _image_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, name)))


def _decode(path: str) -> np.ndarray:
    """One image as uint8 ``[height, width, channels]``, or a ``ValueError`` naming the file."""
    try:
        with open(path, "rb") as handle:
            image = tf.io.decode_image(handle.read(), expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, OSError) as error:
        message = " ".join(str(getattr(error, "message", error)).split())[:200]
        raise ValueError(f"`data`: cannot decode the image {path!r} ({message}); remove it or "
                         "replace it with a PNG, JPEG, BMP or GIF file.") from None
    return image.astype(np.uint8)


def _resized(image: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    if image.shape[-1] != channels:
        image = image[..., :3] if channels == 3 else image
        if image.shape[-1] == 1 and channels == 3:
            image = np.repeat(image, 3, axis=-1)
        elif image.shape[-1] >= 3 and channels == 1:
            image = np.round(image[..., :3] @ [0.299, 0.587, 0.114])[..., None]
    if image.shape[:2] != tuple(size):
        image = tf.image.resize(image, size, antialias=True).numpy()
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def read_image_folder(path: str, *, image_size: tuple[int, int] | None = None,
                      validation_fraction: float = 0.1, seed: int = 0) -> OwnData:
    """Read every image of ``path``'s class subfolders; hold back a stratified split.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no images, fewer than two classes, a file that does not decode (named),
            or a bad ``image_size``.
    """
    path = check_path(path)
    if not os.path.isdir(path):
        raise ValueError(f"`data`: {path!r} is a file; a folder of images needs class "
                         "subfolders (my_images/cat/*.png, my_images/dog/*.png).")
    folders = sorted(name for name in os.listdir(path) if os.path.isdir(os.path.join(path, name)))
    classes = [name for name in folders if name != UNLABELED]
    files = {name: _image_files(os.path.join(path, name)) for name in folders}
    empty = [name for name in classes if not files[name]]
    if not classes or all(not files[name] for name in classes):
        raise ValueError(f"`data`: {path!r} holds no images in class subfolders (PNG, JPEG, "
                         "BMP, GIF): put each class's images in a subfolder named after it.")
    if empty:
        raise ValueError(f"`data`: the class folder {os.path.join(path, empty[0])!r} holds no "
                         f"image ({', '.join(EXTENSIONS)}).")
    if len(classes) < 2:
        raise ValueError(f"`data`: {path!r} has one class only ({classes[0]!r}); a classifier "
                         "needs at least two class subfolders.")
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise ValueError(f"`image_size` must be (height, width), got {image_size!r}.")
    images, labels = [], []
    for label, name in [(i, name) for i, name in enumerate(classes)] + [(-1, UNLABELED)]:
        for file in files.get(name, []):
            images.append(_decode(file))
            labels.append(label)
    notes = []
    channel_counts = collections.Counter(image.shape[-1] for image in images)
    channels = 3 if any(count >= 3 for count in channel_counts) else 1
    if len(channel_counts) > 1:
        notes.append(f"converted images with {sorted(channel_counts)} channels to "
                     f"{'RGB' if channels == 3 else 'grey'}")
    sizes = collections.Counter(image.shape[:2] for image in images)
    if image_size is None:
        image_size = sizes.most_common(1)[0][0]
        if len(sizes) > 1:
            notes.append(f"resized {len(images) - sizes[image_size]} images to the most common "
                         f"size {image_size[0]}×{image_size[1]} (set image_size to choose)")
    x = np.stack([_resized(image, tuple(image_size), channels) for image in images])
    labels = np.asarray(labels, np.int32)
    labeled = np.flatnonzero(labels >= 0)
    held = np.zeros(len(labels), bool)
    held[labeled] = stratified_split(labels[labeled], validation_fraction, seed)
    info = {"input_shape": tuple(x.shape[1:]), "num_classes": len(classes),
            "class_names": classes, "unlabeled": int(np.sum(labels < 0))}
    train, validation = split_rows({"x": x, "label": labels}, held, seed)
    return OwnData("images", train, validation, info, notes)


def from_directory(path: str, *, image_size: tuple[int, int] | None = None,
                   validation_fraction: float = 0.1,
                   seed: int = 0) -> tuple[dict[str, tf.data.Dataset], dict[str, Any]]:
    """Your folder of images as datasets for :class:`~keras_selfevo.SelfEvolvingModel`.

    Elements are ``(image, {"policy": one-hot class, "reward": 1})`` with images in [0, 1];
    an image under ``unlabeled/`` has an all-zero policy target and reward 0 (self-loss only
    under ``"raw"`` weighting).

    Example:
    >>> datasets, info = kse.data.from_directory("my_images/")
    >>> model = kse.zoo.build("mnist_cnn", input_shape=info["input_shape"],
    ...                       num_classes=info["num_classes"])
    >>> model.compile(optimizer="adam", reinforce_loss="log_likelihood")
    >>> model.fit(datasets["train"].batch(32), validation_data=datasets["validation"].batch(32))

    Returns:
        ``({"train": ..., "validation": ...}, info)``: ``info`` holds ``input_shape``,
        ``num_classes``, ``class_names``, ``unlabeled`` (a count) and ``notes``.
    """
    data = read_image_folder(path, image_size=image_size,
                             validation_fraction=validation_fraction, seed=seed)
    num_classes = data.info["num_classes"]
    datasets = {split: to_dataset(arrays["x"].astype(np.float32) / 255.0,
                                  classification_rows(arrays["label"], num_classes))
                for split, arrays in (("train", data.train), ("validation", data.validation))}
    return datasets, {**data.info, "notes": data.notes}
