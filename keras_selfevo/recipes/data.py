"""The datasets recipes read: arrays of a split, epoch-ordered batches, corpora, labeled sets.

Text datasets (``selfevo_text/...``) give token ids ``x`` and the next tokens ``next``; image
datasets give ``x`` (images) and ``label``. Everything is read through
:func:`keras_selfevo.data.load`, so nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo.data import shakespeare, text
from keras_selfevo.data.loading import load
from keras_selfevo.data.text_builder import vocabulary_of

# Datasets of long texts: a language model trains on random windows of their concatenation.
CORPORA = ("selfevo_shakespeare",)


def is_text(config: dict[str, Any]) -> bool:
    """Whether the recipe's dataset is a text dataset (token ids, not images)."""
    return config["dataset"].split("/")[0] == "selfevo_text"


def read_split(config: dict[str, Any], split: str, limit: int | None) -> dict[str, np.ndarray]:
    """One split as NumPy arrays: ``x`` and ``label`` (images) or ``x`` and ``next`` (text)."""
    if is_text(config):
        dataset = load(config["dataset"], split=split, data_dir=config["data_dir"])
        if limit:
            dataset = dataset.take(limit)
        lines = [t.decode() for t in dataset.map(lambda e: e["text"]).as_numpy_iterator()]
        length = config["sequence_length"]
        ids = text.encode(lines, vocabulary_of(config["dataset"]),
                          None if length is None else length + 1)
        return {"x": ids[:, :-1], "next": ids[:, 1:]}
    arrays = load(config["dataset"], split=split, data_dir=config["data_dir"], batch_size=-1)
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    if limit:
        arrays = {key: value[:limit] for key, value in arrays.items()}
    return {"x": arrays["image"], "label": arrays["label"].astype(np.int32)}


def read_data(config: dict[str, Any]) -> tuple[dict, dict | None, dict[str, Any]]:
    """Train and validation arrays of a recipe, and what the model needs to know of them."""
    train = read_split(config, config["train_split"], config["max_train_examples"])
    validation = None
    if config["validation_split"]:
        validation = read_split(config, config["validation_split"],
                                 config["max_validation_examples"])
    if is_text(config):
        info = {"vocabulary": vocabulary_of(config["dataset"])}
    else:
        info = {"input_shape": tuple(train["x"].shape[1:]),
                "num_classes": int(train["label"].max()) + 1}
    if len(train["x"]) < config["batch_size"]:
        raise ValueError(
            f"`batch_size`={config['batch_size']} is larger than the {len(train['x'])} training "
            "examples."
        )
    return train, validation, info


def to_model_inputs(config: dict[str, Any], info: dict[str, Any]):
    """The map from a batch of arrays to ``(x, targets)`` for a SelfEvolvingModel."""
    if is_text(config):
        return lambda batch: (batch["x"], {"self": batch["next"]})

    def images(batch):
        x = tf.cast(batch["x"], tf.float32) / 255.0
        policy = tf.one_hot(batch["label"], info["num_classes"])
        # Supervised training: every label is right, reward 1.
        return x, {"policy": policy, "reward": tf.ones_like(batch["label"], tf.float32)}

    return images


def epoch_dataset(arrays: dict[str, np.ndarray], batch_size: int, seed: int, first_epoch: int,
                  epochs: int, to_model) -> tuple[tf.data.Dataset, int]:
    """Batches of epochs ``first_epoch .. epochs - 1``, each shuffled by ``(seed, epoch)``.

    The order of epoch ``e`` does not depend on where training started, so a resumed run
    sees the same batches as an uninterrupted one.
    """
    size = len(arrays["x"])
    steps = size // batch_size
    tensors = {key: tf.constant(value) for key, value in arrays.items()}

    def epoch_order(epoch):
        keys = tf.random.stateless_uniform([size], tf.stack([seed, tf.cast(epoch, tf.int32)]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys)[: steps * batch_size])

    batches = (tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
               .batch(batch_size, drop_remainder=True))
    gather = lambda idx: to_model({k: tf.gather(v, idx) for k, v in tensors.items()})  # noqa: E731
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2), steps


def validation_dataset(arrays: dict[str, np.ndarray], batch_size: int,
                       to_model) -> tf.data.Dataset:
    """The validation split in order, batched and mapped to model inputs."""
    return (tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
            .map(to_model).prefetch(2))




def is_corpus(config: dict[str, Any]) -> bool:
    """Whether the recipe's dataset is a corpus of long texts (random-window training)."""
    return config["dataset"].split("/")[0].split(":")[0] in CORPORA


def corpus_ids(config: dict[str, Any], split: str) -> np.ndarray:
    """A corpus split as one stream of token ids: its parts in sorted name order."""
    examples = load(config["dataset"], split=split, data_dir=config["data_dir"])
    parts = sorted((f"{e['genre'].decode()}/{e['slug'].decode()}", e["text"].decode())
                   for e in examples.as_numpy_iterator())
    return text.encode_stream("".join(t for _, t in parts), shakespeare.vocabulary())


def read_corpus(config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Train and validation token streams of a corpus recipe, and its vocabulary."""
    train = corpus_ids(config, config["train_split"])
    validation = (corpus_ids(config, config["validation_split"])
                  if config["validation_split"] else None)
    window = config["sequence_length"]
    if len(train) <= window:
        raise ValueError(f"`sequence_length`={window} is longer than the training text.")
    return train, validation, {"vocabulary": shakespeare.vocabulary()}


def texts(dataset: str, split: str, data_dir: str | None) -> list[str]:
    """The ``text`` feature of every example of a text dataset's split."""
    examples = load(dataset, split=split, data_dir=data_dir)
    return [t.decode() for t in examples.map(lambda e: e["text"]).as_numpy_iterator()]


def labeled_arrays(dataset: str, data_dir: str | None) -> list[np.ndarray]:
    """Train images, train labels, test images, test labels of a labeled image dataset."""
    train = load(dataset, split="train", data_dir=data_dir, batch_size=-1)
    test = load(dataset, split="test", data_dir=data_dir, batch_size=-1)
    return [np.asarray(a) for a in (train["image"], train["label"], test["image"],
                                    test["label"])]
