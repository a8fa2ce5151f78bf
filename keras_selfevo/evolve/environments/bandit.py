"""Contextual bandits over labeled images: reward 1 for the right class, else 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.lazy import tfp
from keras_selfevo.evolve.environments.base import (
    Environment,
    EnvironmentBase,
    Observations,
    appended,
    extra_rows,
)


def _sample_classes(probabilities: np.ndarray, temperature: float, epsilon: float,
                    seed: int) -> np.ndarray:
    """Categorical samples at ``temperature`` (0: greedy), uniform with prob. ``epsilon``."""
    logits = tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), 1e-12))
    stream = tf.constant([seed % (2**31 - 1), 1], tf.int32)
    tfd = tfp.distributions
    if temperature == 0:
        chosen = tf.argmax(logits, -1, output_type=tf.int32)
    else:
        chosen = tfd.Categorical(logits=logits / temperature, dtype=tf.int32).sample(seed=stream)
    if epsilon > 0:
        count, classes = probabilities.shape
        explore_seed, uniform_seed = tfp.random.split_seed(stream + 7, n=2)
        explore = tfd.Bernoulli(probs=epsilon, dtype=tf.bool).sample(count, seed=explore_seed)
        uniform = tfd.Categorical(logits=tf.zeros([classes]), dtype=tf.int32).sample(
            count, seed=uniform_seed)
        chosen = tf.where(explore, uniform, chosen)
    return chosen.numpy()


class BanditClassification(EnvironmentBase):
    """A contextual bandit over a labeled image set: reward 1 for the right class, else 0.

    The model sees images only; its ``"policy"`` output (class probabilities) picks a class,
    and the reward is all it learns from. ``evaluate`` reports the greedy accuracy on the
    held-out images.

    With ``rewarded`` (indices into ``images``), only those images are ever shown for a
    reward; every image is still there for self-supervised pretraining
    (``pretraining_data``), so the others teach through the self-loss alone. With
    ``unrewarded_fraction`` > 0 they also join each generation's training rows, as that
    share of the rows: an image the loop never rewards, no action (an all-zero policy
    target) and reward 0, so it trains the self-loss only. (Reward-0 rows weigh 0 in the
    policy term under the ``raw``, ``normalized``, ``grpo`` and ``rloo`` weightings of the
    bandit's 0/1 rewards.)

    Args:
        images: Training images ``[n, ...]`` (uint8 are scaled to [0, 1]).
        labels: Their integer labels ``[n]``.
        test_images: Held-out images for ``evaluate``.
        test_labels: Their labels.
        num_classes: Number of classes (default: the largest label + 1).
        rewarded: Indices of the images the loop may reward (default: all).
        unrewarded_fraction: In [0, 1): the share of each generation's training rows that
            are images outside ``rewarded`` (self-loss only); needs ``rewarded``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
                 test_labels: np.ndarray, num_classes: int | None = None,
                 rewarded: np.ndarray | None = None, unrewarded_fraction: float = 0.0):
        scale = lambda a: (a.astype(np.float32) / 255.0 if a.dtype.kind in "ui"  # noqa: E731
                           else a.astype(np.float32))
        self.images, self.labels = scale(np.asarray(images)), np.asarray(labels).astype(np.int64)
        self.test_images = scale(np.asarray(test_images))
        self.test_labels = np.asarray(test_labels).astype(np.int64)
        self.num_classes = num_classes or int(self.labels.max()) + 1
        if rewarded is not None:
            rewarded = np.asarray(rewarded, np.int64)
            if not len(rewarded) or rewarded.min() < 0 or rewarded.max() >= len(self.images):
                raise ValueError(f"`rewarded` must be non-empty indices into the "
                                 f"{len(self.images)} images; got {len(rewarded)} indices.")
        _checks.number(unrewarded_fraction, "unrewarded_fraction", 0.0, 1.0, high_open=True)
        unrewarded = (np.zeros(0, np.int64) if rewarded is None else
                      np.setdiff1d(np.arange(len(self.images)), rewarded))
        if unrewarded_fraction > 0 and not len(unrewarded):
            raise ValueError("`unrewarded_fraction` > 0 needs images outside `rewarded` (give "
                             "`rewarded` a subset of the images).")
        self.rewarded, self.unrewarded = rewarded, unrewarded
        self.unrewarded_fraction = float(unrewarded_fraction)

    def observe(self, count: int, seed: int) -> Observations:
        pool = len(self.images) if self.rewarded is None else len(self.rewarded)
        index = np.random.default_rng([seed, 0]).integers(0, pool, count)
        if self.rewarded is not None:
            index = self.rewarded[index]
        return Observations(self.images[index], self.labels[index])

    def _probabilities(self, model, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
        # Whole batches only: a smaller last batch would trace the predict function again
        # each time the loop recompiles or rebuilds the model.
        padding = np.zeros((-len(inputs) % batch_size, *inputs.shape[1:]), inputs.dtype)
        out = model.predict(np.concatenate([inputs, padding]), batch_size=batch_size,
                            verbose=0)
        return np.asarray(out["policy"] if isinstance(out, dict) else out)[:len(inputs)]

    def act(self, model, observations: Observations, temperature: float, epsilon: float,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
        probs = self._probabilities(model, observations.inputs)
        return observations.inputs, _sample_classes(probs, temperature, epsilon, seed)

    def reward(self, observations: Observations, actions: np.ndarray) -> np.ndarray:
        return (np.asarray(actions) == observations.hidden).astype(np.float32)

    def targets(self, observations: Observations, model_inputs: np.ndarray,
                actions: np.ndarray) -> dict[str, np.ndarray]:
        # The self target is the image itself (the model's default), so it is left out.
        return {"policy": np.eye(self.num_classes, dtype=np.float32)[actions]}

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Add never-rewarded images (no action, reward 0): ``unrewarded_fraction``."""
        count = self.added_rows(len(x))
        if not count:
            return x, y
        index = self.unrewarded[np.random.default_rng([seed, 6]).integers(
            0, len(self.unrewarded), count)]
        extra = {key: np.zeros((count, *value.shape[1:]), value.dtype)
                 for key, value in y.items()}
        return appended(x, y, self.images[index], extra)

    def added_rows(self, count: int) -> int:
        """Unrewarded images added to ``count`` rows."""
        return extra_rows(self.unrewarded_fraction, count)

    def evaluate(self, model) -> dict[str, float]:
        probs = self._probabilities(model, self.test_images)
        return {"accuracy": float(np.mean(probs.argmax(-1) == self.test_labels))}

    def model_arguments(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "input_shape": self.images.shape[1:]}

    def pretraining_data(self, batch_size: int, seed: int) -> dict[str, Any]:
        """Every image, unlabeled: the self target is the model's own (image or output)."""
        return {"x": self.images, "batch_size": batch_size}

    def supervised_baseline(self) -> Environment:
        return SupervisedBandit(self.images, self.labels, self.test_images, self.test_labels,
                                self.num_classes, self.rewarded, self.unrewarded_fraction)


class SupervisedBandit(BanditClassification):
    """The supervised twin of a bandit: the same observations, the label as the action."""

    def act(self, model, observations, temperature, epsilon, seed):
        return observations.inputs, observations.hidden

    def supervised_baseline(self) -> None:
        return None
