"""The datasets recipes read: arrays of a split, epoch-ordered batches, corpora, labeled sets.

Text datasets (``selfevo_text/...``) give token ids ``x`` and the next tokens ``next``; image
datasets give ``x`` (images) and ``label``. Everything is read through
:func:`keras_selfevo.data.load`, so nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo import zoo
from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import shakespeare, text
from keras_selfevo.data.image_folder import read_image_folder
from keras_selfevo.data.loading import load
from keras_selfevo.data.own_data import OwnData
from keras_selfevo.data.pipeline import numpy_elements, untuned
from keras_selfevo.data.table import read_table
from keras_selfevo.data.text_builder import vocabulary_of
from keras_selfevo.data.text_files import read_labelled_texts, read_text
from keras_selfevo.zoo.tabular import tabular_arguments

# Datasets of long texts: a language model trains on random windows of their concatenation.
CORPORA = ("selfevo_shakespeare",)


def own_data_kind(config: dict[str, Any]) -> str | None:
    """What the recipe's model reads from the user's ``data`` (None: a TFDS ``dataset``)."""
    if not config.get("data"):
        return None
    kind = zoo.data_kind(config["model"])
    if kind is None:
        raise ValueError(f"`data`: zoo model {config['model']!r} does not train on your own "
                         "files; its recipes take `dataset`.")
    return kind


def is_text(config: dict[str, Any]) -> bool:
    """Whether the recipe's dataset is a text dataset of lines (token rows, not images)."""
    return (own_data_kind(config) is None
            and config["dataset"].split("/")[0] == "selfevo_text")


def read_own(config: dict[str, Any], vocabulary: str | None = None) -> OwnData:
    """The user's files (``data``) as the recipe's model reads them.

    ``vocabulary``: a pretrained model's characters, for text (else one is built).
    """
    kind, path = own_data_kind(config), config["data"]
    common = {"validation_fraction": config["validation_fraction"]}
    if kind == "images":
        return read_image_folder(path, image_size=config.get("image_size"),
                                 seed=config["seed"], **common)
    if kind == "table":
        return read_table(path, label=config["label"], seed=config["seed"], **common)
    if kind == "labelled_texts":
        return read_labelled_texts(path, text_column=config["text"], label=config["label"],
                                   length=config["sequence_length"] or 256,
                                   max_vocabulary=config["max_vocabulary"],
                                   vocabulary=vocabulary, seed=config["seed"], **common)
    return read_text(path, max_vocabulary=config["max_vocabulary"], vocabulary=vocabulary,
                     **common)


def _own_info(data: OwnData) -> dict[str, Any]:
    """What the zoo builder takes from the user's data."""
    if data.kind == "table":
        return {**tabular_arguments(data.info), "kind": "table", "table": data.info}
    return {**data.info, "kind": data.kind}


def read_split(config: dict[str, Any], split: str, limit: int | None) -> dict[str, np.ndarray]:
    """One split as NumPy arrays: ``x`` and ``label`` (images) or ``x`` and ``next`` (text)."""
    if is_text(config):
        dataset = load(config["dataset"], split=split, data_dir=config["data_dir"])
        if limit:
            dataset = dataset.take(limit)
        lines = [t.decode() for t in numpy_elements(dataset.map(lambda e: e["text"]))]
        length = config["sequence_length"]
        ids = text.encode(lines, vocabulary_of(config["dataset"]),
                          None if length is None else length + 1)
        return {"x": ids[:, :-1], "next": ids[:, 1:]}
    arrays = load(config["dataset"], split=split, data_dir=config["data_dir"], batch_size=-1)
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    if limit:
        arrays = {key: value[:limit] for key, value in arrays.items()}
    return {"x": arrays["image"], "label": arrays["label"].astype(np.int32)}


def read_data(config: dict[str, Any],
              vocabulary: str | None = None) -> tuple[dict, dict | None, dict[str, Any]]:
    """Train and validation arrays of a recipe, and what the model needs to know of them.

    ``info["notes"]`` says what the reader of the user's files did (converted channels...).
    """
    if own_data_kind(config):
        own = read_own(config, vocabulary)
        train, validation, info = own.train, own.validation, {**_own_info(own),
                                                              "notes": own.notes}
        if np.any(np.asarray(train["label"], np.float64) < 0):  # unlabelled rows
            train["labeled"] = np.asarray(train["label"]) >= 0
    else:
        train = read_split(config, config["train_split"], config["max_train_examples"])
        validation = None
        if config["validation_split"]:
            validation = read_split(config, config["validation_split"],
                                    config["max_validation_examples"])
        if is_text(config):
            info = {"vocabulary": vocabulary_of(config["dataset"]), "kind": "token_rows"}
        else:
            info = {"input_shape": tuple(train["x"].shape[1:]),
                    "num_classes": int(train["label"].max()) + 1, "kind": "images"}
    if config.get("labeled_fraction") is not None:
        keep = labeled_subset(train["label"], config["labeled_fraction"], config["seed"])
        train["labeled"] = np.zeros(len(train["label"]), bool)
        train["labeled"][keep] = True
    count = len(train["label"] if "label" in train else train["x"])
    if count < config["batch_size"]:
        raise ValueError(
            f"`batch_size`={config['batch_size']} is larger than the {count} training "
            "examples."
        )
    return train, validation, info


def to_model_inputs(config: dict[str, Any], info: dict[str, Any]):
    """The map from a batch of arrays to ``(x, targets)`` for a SelfEvolvingModel.

    A row without a label (``labeled`` false, or label -1) gets reward 0 and an all-zero
    policy target: it trains the self-loss only under ``"raw"`` weighting.
    """
    kind = info.get("kind", "images")
    if kind == "token_rows":
        return lambda batch: (batch["x"], {"self": batch["next"]})
    if kind == "table" and info["table"]["task"] == "regression":
        def values(batch):
            present = tf.logical_not(tf.math.is_nan(batch["label"]))
            value = tf.where(present, batch["label"], tf.zeros_like(batch["label"]))
            return batch["x"], {"policy": tf.cast(value, tf.float32)[:, None],
                                "reward": tf.cast(present, tf.float32)}
        return values

    def images(batch):
        x = batch["x"]
        if kind == "images":
            x = tf.cast(x, tf.float32) / 255.0
        policy = tf.one_hot(tf.cast(batch["label"], tf.int32), info["num_classes"])
        if "labeled" not in batch:
            # Supervised training: every label is right, reward 1.
            return x, {"policy": policy, "reward": tf.ones_like(batch["label"], tf.float32)}
        # Semi-supervised: an unlabeled image has reward 0 (no policy gradient under "raw"
        # weighting) and an all-zero policy target, so its label never reaches the model.
        labeled = tf.cast(batch["labeled"], tf.float32)
        return x, {"policy": policy * labeled[:, None], "reward": labeled}

    return images


def _gathered(batches: tf.data.Dataset, tensors: dict[str, Any],
              to_model) -> tf.data.Dataset:
    """Batches of indices → the arrays' rows at them (a nest of arrays), mapped to inputs."""
    gather = lambda idx: to_model(tf.nest.map_structure(  # noqa: E731
        lambda v: tf.gather(v, idx), tensors))
    return untuned(batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))


def epoch_dataset(arrays: dict[str, np.ndarray], batch_size: int, seed: int, first_epoch: int,
                  epochs: int, to_model) -> tuple[tf.data.Dataset, int]:
    """Batches of epochs ``first_epoch .. epochs - 1``, each shuffled by ``(seed, epoch)``.

    The order of epoch ``e`` does not depend on where training started, so a resumed run
    sees the same batches as an uninterrupted one.
    """
    size = len(arrays["label"] if "label" in arrays else arrays["x"])
    steps = size // batch_size
    tensors = tf.nest.map_structure(tf.constant, arrays)

    def epoch_order(epoch):
        keys = tf.random.stateless_uniform([size], tf.stack([seed, tf.cast(epoch, tf.int32)]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys)[: steps * batch_size])

    batches = (tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
               .batch(batch_size, drop_remainder=True))
    return _gathered(batches, tensors, to_model), steps


def labeled_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified, seeded share ``fraction`` of the examples.

    Each class ``c`` keeps ``round(fraction * n_c)`` of its ``n_c`` examples, at least one,
    drawn by ``seed`` alone: the same fraction and seed always pick the same images.
    """
    _checks.number(fraction, "fraction", 0.0, 1.0, low_open=True)
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 1])
    chosen = []
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        count = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, count, replace=False))
    return np.sort(np.concatenate(chosen))


def mixed_epoch_dataset(arrays: dict[str, np.ndarray], labeled_per_batch: int, batch_size: int,
                        seed: int, first_epoch: int, epochs: int,
                        to_model) -> tuple[tf.data.Dataset, int]:
    """Batches mixing a fixed number of labeled examples with unlabeled ones.

    Each batch has ``labeled_per_batch`` labeled and ``batch_size - labeled_per_batch``
    unlabeled examples (``arrays["labeled"]`` tells them apart).

    An epoch is one pass over the unlabeled examples in an order seeded by ``(seed,
    epoch)``; the labeled examples cycle beside them, each pass in a fresh seeded order. As in
    :func:`epoch_dataset`, epoch ``e`` does not depend on where training started.
    """
    labeled = np.flatnonzero(arrays["labeled"])
    unlabeled = np.flatnonzero(~np.asarray(arrays["labeled"], bool))
    other = batch_size - labeled_per_batch
    if other < 1 or not len(unlabeled) or not len(labeled):
        raise ValueError(f"`labeled_per_batch`={labeled_per_batch} needs labeled and unlabeled "
                         f"examples and fewer than `batch_size`={batch_size}; the split has "
                         f"{len(labeled)} labeled and {len(unlabeled)} unlabeled.")
    steps = len(unlabeled) // other
    if not steps:
        raise ValueError(f"`batch_size` - `labeled_per_batch` = {other} is more than the "
                         f"{len(unlabeled)} unlabeled examples.")
    passes = -(-steps * labeled_per_batch // len(labeled))
    labeled_ids, unlabeled_ids = tf.constant(labeled), tf.constant(unlabeled)
    tensors = tf.nest.map_structure(tf.constant, arrays)

    def epoch_order(epoch):
        epoch = tf.cast(epoch, tf.int32)
        keys = tf.random.stateless_uniform([len(unlabeled)], tf.stack([seed, epoch]))
        rest = tf.gather(unlabeled_ids, tf.argsort(keys)[: steps * other])
        cycle = tf.random.stateless_uniform([passes, len(labeled)], tf.stack([seed, -1 - epoch]))
        chosen = tf.gather(labeled_ids, tf.reshape(tf.argsort(cycle, axis=-1), [-1]))
        rows = tf.concat([tf.reshape(chosen[: steps * labeled_per_batch],
                                     [steps, labeled_per_batch]),
                          tf.reshape(rest, [steps, other])], axis=1)
        return tf.data.Dataset.from_tensor_slices(rows)

    batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
    return _gathered(batches, tensors, to_model), steps


def validation_dataset(arrays: dict[str, np.ndarray], batch_size: int,
                       to_model) -> tf.data.Dataset:
    """The validation split in order, batched and mapped to model inputs."""
    return untuned(tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
                   .map(to_model).prefetch(2))


def is_corpus(config: dict[str, Any]) -> bool:
    """Whether the recipe trains on random windows of long texts (a corpus, your text)."""
    kind = own_data_kind(config)
    if kind is not None:
        return kind == "text"
    return config["dataset"].split("/")[0].split(":")[0] in CORPORA


def corpus_ids(config: dict[str, Any], split: str) -> np.ndarray:
    """A corpus split as one stream of token ids: its parts in sorted name order."""
    examples = load(config["dataset"], split=split, data_dir=config["data_dir"])
    parts = sorted((f"{e['genre'].decode()}/{e['slug'].decode()}", e["text"].decode())
                   for e in numpy_elements(examples))
    return text.encode_stream("".join(t for _, t in parts), shakespeare.vocabulary())


def read_corpus(config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Train and validation token streams of a corpus recipe, and its vocabulary."""
    if own_data_kind(config):
        own = read_own(config)
        train, validation = own.train["ids"], own.validation["ids"]
        info = {"vocabulary": own.info["vocabulary"], "notes": own.notes}
    else:
        train = corpus_ids(config, config["train_split"])
        validation = (corpus_ids(config, config["validation_split"])
                      if config["validation_split"] else None)
        info = {"vocabulary": shakespeare.vocabulary()}
    window = config["sequence_length"]
    for name, ids in (("training", train), ("validation", validation)):
        if ids is not None and len(ids) <= window + 1:
            raise ValueError(f"`data`: the {name} text holds {len(ids)} characters: too short "
                             f"for one window of `sequence_length`={window} + 1.")
    return train, validation, info


def texts(dataset: str, split: str, data_dir: str | None) -> list[str]:
    """The ``text`` feature of every example of a text dataset's split."""
    examples = load(dataset, split=split, data_dir=data_dir)
    return [t.decode() for t in numpy_elements(examples.map(lambda e: e["text"]))]


def folder_classes(config: dict[str, Any], split: str) -> tf.data.Dataset:
    """Labelled images of a folder's classes for few-shot tasks (disjoint classes).

    The first 80% of the classes (sorted) for ``"train"``, the rest for any other split.

    Raises:
        ValueError: too few classes for ``ways`` in each part.
    """
    own = read_image_folder(config["data"], image_size=config.get("image_size"),
                            validation_fraction=0.5, seed=config["seed"])
    images = np.concatenate([own.train["x"], own.validation["x"]])
    labels = np.concatenate([own.train["label"], own.validation["label"]])
    classes = own.info["num_classes"]
    cut = int(round(classes * 0.8))
    if min(cut, classes - cut) < config["ways"]:
        raise ValueError(f"`data`: {classes} classes make {cut} for meta-training and "
                         f"{classes - cut} for evaluation; `ways`={config['ways']} needs at "
                         f"least {config['ways']} in each (so "
                         f"{int(np.ceil(config['ways'] / 0.2))} classes), or fewer ways.")
    part = (labels >= 0) & ((labels < cut) if split == "train" else (labels >= cut))
    return tf.data.Dataset.from_tensor_slices({"image": images[part],
                                               "label": labels[part].astype(np.int64)})


def labeled_arrays(dataset: str, data_dir: str | None) -> list[np.ndarray]:
    """Train images, train labels, test images, test labels of a labeled image dataset."""
    train = load(dataset, split="train", data_dir=data_dir, batch_size=-1)
    test = load(dataset, split="test", data_dir=data_dir, batch_size=-1)
    return [np.asarray(a) for a in (train["image"], train["label"], test["image"],
                                    test["label"])]
