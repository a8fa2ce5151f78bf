"""Environments of the self-evolution loop: observe → act → reward.

An environment implements :class:`Environment`; :class:`EnvironmentBase` gives every
optional method a default, so a new environment writes only the four it must:

- ``observe(count, seed)`` returns ``count`` observations: the model's inputs (an array with
  a leading axis of ``count``) plus anything the environment keeps to itself (labels);
- ``act(model, observations, temperature, epsilon, seed)`` samples one action per
  observation with the model's policy and returns them with the model inputs to train on;
- ``reward(observations, actions)`` returns a float reward per action, shape ``[count]``;
- ``targets(observations, inputs, actions)`` builds the training targets of the samples.

The others (``evaluate``, ``describe``, ``mix_rows``, ``model_arguments``,
``pretraining_data``, ``supervised_baseline``, ``final_report``) log metrics each
generation, add rows of the environment's own to a generation's training data, and tell a
recipe how to build, pretrain and report on a model for this environment.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_selfevo import _checks
from keras_selfevo.data import text
from keras_selfevo.evolve import rewards as reward_functions

tfd = tfp.distributions


@dataclasses.dataclass
class Observations:
    """A batch of observations.

    ``inputs`` go to the model; ``hidden`` stays with the environment (e.g. the labels a
    bandit never shows).
    """

    inputs: np.ndarray
    hidden: Any = None


@runtime_checkable
class Environment(Protocol):
    """The protocol the loop and the evolve recipes drive (see the module docstring)."""

    def observe(self, count: int, seed: int) -> Observations: ...

    def act(self, model, observations: Observations, temperature: float, epsilon: float,
            seed: int) -> tuple[np.ndarray, np.ndarray]: ...

    def reward(self, observations: Observations, actions: np.ndarray) -> np.ndarray: ...

    def targets(self, observations: Observations, model_inputs: np.ndarray,
                actions: np.ndarray) -> dict[str, np.ndarray]: ...

    def evaluate(self, model) -> dict[str, float]: ...

    def describe(self, actions: np.ndarray) -> dict[str, float]: ...

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...

    def model_arguments(self) -> dict[str, Any]: ...

    def pretraining_data(self, batch_size: int, seed: int) -> dict[str, Any]: ...

    def supervised_baseline(self) -> Environment | None: ...

    def final_report(self, model, temperature: float, seed: int) -> dict[str, Any]: ...


# What the loop calls; EnvironmentBase has defaults for the last three.
LOOP_METHODS = ("observe", "act", "reward", "targets", "evaluate", "describe", "mix_rows")


class EnvironmentBase:
    """Defaults of the optional methods of :class:`Environment`."""

    def evaluate(self, model) -> dict[str, float]:
        """Metrics of the model logged each generation (e.g. held-out accuracy)."""
        return {}

    def describe(self, actions: np.ndarray) -> dict[str, float]:
        """Metrics of a generation's actions (e.g. the share of distinct samples)."""
        return {}

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A generation's training rows plus any of the environment's own (none here)."""
        return x, y

    def model_arguments(self) -> dict[str, Any]:
        """Zoo builder arguments this environment fixes (input shape, classes, vocabulary)."""
        return {}

    def pretraining_data(self, batch_size: int, seed: int) -> dict[str, Any]:
        """``fit`` arguments of self-supervised pretraining, or ``{}`` for none."""
        return {}

    def supervised_baseline(self) -> Environment | None:
        """The same task with the right answer as the action, to compare with; or None."""
        return None

    def final_report(self, model, temperature: float, seed: int) -> dict[str, Any]:
        """What a recipe adds to its report after the loop (e.g. samples)."""
        return {}


def _sample_classes(probabilities: np.ndarray, temperature: float, epsilon: float,
                    seed: int) -> np.ndarray:
    """Categorical samples at ``temperature`` (0: greedy), uniform with prob. ``epsilon``."""
    logits = tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), 1e-12))
    stream = tf.constant([seed % (2**31 - 1), 1], tf.int32)
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

    Args:
        images: Training images ``[n, ...]`` (uint8 are scaled to [0, 1]).
        labels: Their integer labels ``[n]``.
        test_images: Held-out images for ``evaluate``.
        test_labels: Their labels.
        num_classes: Number of classes (default: the largest label + 1).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
                 test_labels: np.ndarray, num_classes: int | None = None):
        scale = lambda a: (a.astype(np.float32) / 255.0 if a.dtype.kind in "ui"  # noqa: E731
                           else a.astype(np.float32))
        self.images, self.labels = scale(np.asarray(images)), np.asarray(labels).astype(np.int64)
        self.test_images = scale(np.asarray(test_images))
        self.test_labels = np.asarray(test_labels).astype(np.int64)
        self.num_classes = num_classes or int(self.labels.max()) + 1

    def observe(self, count: int, seed: int) -> Observations:
        index = np.random.default_rng([seed, 0]).integers(0, len(self.images), count)
        return Observations(self.images[index], self.labels[index])

    def _probabilities(self, model, inputs: np.ndarray) -> np.ndarray:
        out = model.predict(inputs, batch_size=256, verbose=0)
        return np.asarray(out["policy"] if isinstance(out, dict) else out)

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

    def evaluate(self, model) -> dict[str, float]:
        probs = self._probabilities(model, self.test_images)
        return {"accuracy": float(np.mean(probs.argmax(-1) == self.test_labels))}

    def model_arguments(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "input_shape": self.images.shape[1:]}

    def pretraining_data(self, batch_size: int, seed: int) -> dict[str, Any]:
        """Reconstruct the unlabeled images."""
        return {"x": self.images, "y": {"self": self.images}, "batch_size": batch_size}

    def supervised_baseline(self) -> Environment:
        return SupervisedBandit(self.images, self.labels, self.test_images, self.test_labels,
                                self.num_classes)


class SupervisedBandit(BanditClassification):
    """The supervised twin of a bandit: the same observations, the label as the action."""

    def act(self, model, observations, temperature, epsilon, seed):
        return observations.inputs, observations.hidden

    def supervised_baseline(self) -> None:
        return None


class VerifiableGeneration(EnvironmentBase):
    """Strings sampled from a :class:`~keras_selfevo.zoo.CharRNN`, scored by a checker.

    Each observation is an empty prompt (``<bos>``); the model writes a string of up to
    ``length`` characters; ``reward`` is :func:`~keras_selfevo.evolve.rewards.score` with
    ``checker`` (``"arithmetic"`` or ``"dyck"``, partial credit included). The training
    rows are the sampled token sequences: the policy target is the one-hot of each next
    sampled token, and the self target the same next token ids. With a ``corpus``, a
    ``corpus_fraction`` of each generation's training rows are corpus lines (self-supervised
    text, scored by the same checker), and the corpus is what a recipe pretrains on. The
    loop logs the valid rate and the share of distinct samples of each generation.

    With ``held_out`` arithmetic lines, each generation also logs ``held_out_valid``: the
    share of their prompts ``a+b=`` that the model completes correctly (greedy), and
    ``train_prompt_valid``, the same on as many corpus lines: close figures mean the model
    learned to add; a gap, that it recalls the sums it saw.

    Args:
        vocabulary: The model's characters.
        checker: ``"arithmetic"`` or ``"dyck"``.
        length: Characters to sample per string.
        corpus: Unlabeled strings of the language.
        corpus_fraction: Share of the training rows drawn from ``corpus``.
        held_out: Correct lines ``a+b=c`` none of whose pairs is in ``corpus``
            (``checker="arithmetic"`` only).
    """

    def __init__(self, vocabulary: str, checker: str = "arithmetic", length: int = 12,
                 corpus: list[str] | None = None, corpus_fraction: float = 0.0,
                 held_out: list[str] | None = None):
        reward_functions.score([], checker)  # checks the name
        _checks.positive_int(length, "length")
        _checks.number(corpus_fraction, "corpus_fraction", 0.0, 1.0)
        if held_out and checker != "arithmetic":
            raise ValueError(f"`held_out` prompts need checker='arithmetic', got {checker!r}.")
        if held_out and not all(reward_functions.is_correct_sum(line) for line in held_out):
            raise ValueError("`held_out` must hold correct lines 'a+b=c'.")
        self.vocabulary, self.checker, self.length = vocabulary, checker, length
        self.corpus = list(corpus or [])
        self.corpus_fraction = float(corpus_fraction)
        self.held_out = list(held_out or [])

    def observe(self, count: int, seed: int) -> Observations:
        return Observations(np.full((count, 1), text.BOS, np.int32))

    def act(self, model, observations: Observations, temperature: float, epsilon: float,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
        tokens = model.generate_ids(observations.inputs, self.length + 1, temperature,
                                    seed=tf.constant([seed % (2**31 - 1), 3], tf.int32)).numpy()
        # Everything after the first <eos> is padding.
        ended = np.cumsum(np.isin(tokens, (text.EOS, text.PAD)), axis=1) > 0
        after = np.concatenate([np.zeros_like(ended[:, :1]), ended[:, :-1]], axis=1)
        tokens = np.where(after, text.PAD, tokens)
        return tokens[:, :-1], tokens

    def decode(self, actions: np.ndarray) -> list[str]:
        return text.decode(actions, self.vocabulary)

    def reward(self, observations: Observations, actions: np.ndarray) -> np.ndarray:
        return reward_functions.score(self.decode(actions), self.checker)

    def targets(self, observations: Observations, model_inputs: np.ndarray,
                actions: np.ndarray) -> dict[str, np.ndarray]:
        next_ids = actions[:, 1:].astype(np.int32)
        policy = np.eye(text.vocab_size(self.vocabulary), dtype=np.float32)[next_ids]
        return {"policy": policy, "self": next_ids}

    def corpus_rows(self, count: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``count`` corpus lines as training rows, rewarded by the checker."""
        rng = np.random.default_rng([seed, 5])
        lines = [self.corpus[i] for i in rng.integers(0, len(self.corpus), count)]
        ids = text.encode(lines, self.vocabulary, self.length + 2)
        next_ids = ids[:, 1:].astype(np.int32)
        policy = np.eye(text.vocab_size(self.vocabulary), dtype=np.float32)[next_ids]
        rewards = reward_functions.score(lines, self.checker)
        return ids[:, :-1], {"policy": policy, "self": next_ids, "reward": rewards}

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Add corpus lines so that they make ``corpus_fraction`` of the rows."""
        fraction = self.corpus_fraction
        if fraction <= 0 or not self.corpus:
            return x, y
        extra = int(round(fraction / (1 - fraction) * len(x))) if fraction < 1 else len(x)
        corpus_x, corpus_y = self.corpus_rows(extra, seed)
        return (np.concatenate([x, corpus_x]),
                {key: np.concatenate([y[key], corpus_y[key]]) for key in y})

    def model_arguments(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}

    def pretraining_data(self, batch_size: int, seed: int) -> dict[str, Any]:
        """Next-token prediction on the corpus."""
        if not self.corpus:
            return {}
        data = text.language_model_dataset(self.corpus, self.vocabulary, self.length + 1)
        return {"x": data.shuffle(len(self.corpus), seed=seed).batch(batch_size),
                "shuffle": False}

    def final_report(self, model, temperature: float, seed: int) -> dict[str, Any]:
        """Twenty samples of the final model."""
        return {"samples": model.generate([""] * 20, self.length + 1, temperature, seed=seed)}

    def evaluate(self, model) -> dict[str, float]:
        """``held_out_valid`` and ``train_prompt_valid`` (with ``held_out`` lines)."""
        if not self.held_out:
            return {}
        train = self.corpus[:len(self.held_out)]
        return {"held_out_valid": self.completion_rate(model, self.held_out),
                "train_prompt_valid": self.completion_rate(model, train)}

    def completion_rate(self, model, lines: list[str]) -> float:
        """Share of ``lines`` whose prompt (up to ``=``) the model completes exactly (greedy)."""
        prompts = [line[:line.index("=") + 1] for line in lines]
        correct = 0
        for width in sorted({len(p) for p in prompts}):  # generate needs equal lengths
            group = [p for p in prompts if len(p) == width]
            # One length for every width (the sampling loop is traced once); the line ends
            # at the model's <eos>.
            written = model.generate(group, self.length + 1, temperature=0.0, seed=0)
            correct += int(np.sum(reward_functions.score(written, "arithmetic") >= 1.0))
        return correct / max(len(prompts), 1)

    def describe(self, actions: np.ndarray) -> dict[str, float]:
        """``distinct``: the share of different strings among a generation's samples."""
        texts = self.decode(actions)
        return {"distinct": len(set(texts)) / max(len(texts), 1)}
