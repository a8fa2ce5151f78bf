"""Environments of the self-evolution loop: observe → act → reward.

An environment implements :class:`Environment`; :class:`EnvironmentBase` gives every
optional method a default, so a new environment writes only the four it must:

- ``observe(count, seed)`` returns ``count`` observations: the model's inputs (an array with
  a leading axis of ``count``) plus anything the environment keeps to itself (labels);
- ``act(model, observations, temperature, epsilon, seed)`` samples one action per
  observation with the model's policy and returns them with the model inputs to train on;
- ``reward(observations, actions)`` returns a float reward per action, shape ``[count]``;
- ``targets(observations, inputs, actions)`` builds the training targets of the samples.

The others (``evaluate``, ``describe``, ``mix_rows``, ``added_rows``, ``model_arguments``,
``pretraining_data``, ``supervised_baseline``, ``final_report``) log metrics each
generation, add rows of the environment's own to a generation's training data (and say how
many), and tell a recipe how to build, pretrain and report on a model for this environment.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from keras_selfevo import _checks
from keras_selfevo._lazy import tfp
from keras_selfevo.data import text
from keras_selfevo.data.language_data import window_batches
from keras_selfevo.evolve import meter
from keras_selfevo.evolve import rewards as reward_functions


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

    def added_rows(self, count: int) -> int: ...

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

    def added_rows(self, count: int) -> int:
        """How many rows ``mix_rows`` adds to ``count`` rows (none here)."""
        return 0

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
        return _appended(x, y, self.images[index], extra)

    def added_rows(self, count: int) -> int:
        """Unrewarded images added to ``count`` rows."""
        return _extra_rows(self.unrewarded_fraction, count)

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


def _next_token_rows(tokens: np.ndarray, vocabulary: str) -> dict[str, np.ndarray]:
    """Training targets of token rows: the one-hot next token (policy) and its id (self)."""
    next_ids = tokens[:, 1:].astype(np.int32)
    policy = np.eye(text.vocab_size(vocabulary), dtype=np.float32)[next_ids]
    return {"policy": policy, "self": next_ids}


def _extra_rows(fraction: float, count: int) -> int:
    """How many rows to add to ``count`` so that they make ``fraction`` of all (1: as many)."""
    return int(round(fraction / (1 - fraction) * count)) if fraction < 1 else count


def _appended(x: np.ndarray, y: dict[str, np.ndarray], extra_x: np.ndarray,
              extra_y: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows ``extra_x, extra_y`` after ``x, y`` (the keys of ``y``)."""
    return (np.concatenate([x, extra_x]),
            {key: np.concatenate([y[key], extra_y[key]]) for key in y})


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
        return _next_token_rows(actions, self.vocabulary)

    def corpus_rows(self, count: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``count`` corpus lines as training rows, rewarded by the checker."""
        rng = np.random.default_rng([seed, 5])
        lines = [self.corpus[i] for i in rng.integers(0, len(self.corpus), count)]
        ids = text.encode(lines, self.vocabulary, self.length + 2)
        rewards = reward_functions.score(lines, self.checker)
        return ids[:, :-1], {**_next_token_rows(ids, self.vocabulary), "reward": rewards}

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Add corpus lines so that they make ``corpus_fraction`` of the rows."""
        count = self.added_rows(len(x))
        return _appended(x, y, *self.corpus_rows(count, seed)) if count else (x, y)

    def added_rows(self, count: int) -> int:
        """Corpus lines added to ``count`` rows."""
        if self.corpus_fraction <= 0 or not self.corpus:
            return 0
        return _extra_rows(self.corpus_fraction, count)

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


class MeterEnvironment(EnvironmentBase):
    r"""A language model writes the next line of verse; a scansion checker scores its meter.

    Each observation is a prompt: the ``prompt_length`` characters of real text that end at
    a verse line break (``"  \n"`` in the Shakespeare markdown). The model continues it by
    ``length`` characters; the line is what it writes up to the next newline, and its
    reward :func:`~keras_selfevo.evolve.meter.meter_reward` (1 for iambic pentameter,
    partial credit, 0 with a word the CMU dictionary lacks). The training rows are the whole
    window (prompt and sample): the policy target is the one-hot of each next token, the
    self target the next ids. With group-relative weighting the prompt's positions get no
    net push (the group shares them and its advantages sum to 0). A ``corpus_fraction`` of
    the rows are windows of the training text with reward 0, which only the self-loss
    learns from (a zero advantage, or below a filter's threshold).

    Each generation logs ``validation_nats_per_char`` on the first ``validation_chars`` of
    the validation stream (drift from the text) and ``distinct_4grams``, the share of
    distinct word 4-grams among the generation's lines; the loop adds the mean reward and
    ``valid_rate``, the share of perfect lines.

    Args:
        train_ids: Token ids of the training text (the prompts and the corpus rows).
        validation_ids: Token ids of the validation text.
        vocabulary: The model's characters.
        prompt_length: Characters of each prompt.
        length: Characters the model writes after it.
        corpus_fraction: Share of the training rows that are training-text windows.
        validation_chars: Characters of the validation stream scored each generation
            (the final report scores all of it).
        eval_window: Window of the nats/char scoring (and of pretraining).
        pretrain_steps: Steps per epoch of a recipe's next-token pretraining.
    """

    def __init__(self, train_ids: np.ndarray, validation_ids: np.ndarray, vocabulary: str, *,
                 prompt_length: int = 16, length: int = 48, corpus_fraction: float = 0.0,
                 validation_chars: int = 50_000, eval_window: int = 64,
                 pretrain_steps: int = 500):
        _checks.positive_int(prompt_length, "prompt_length")
        _checks.positive_int(length, "length")
        _checks.number(corpus_fraction, "corpus_fraction", 0.0, 1.0, high_open=True)
        _checks.positive_int(validation_chars, "validation_chars")
        _checks.positive_int(eval_window, "eval_window")
        _checks.positive_int(pretrain_steps, "pretrain_steps")
        self.train_ids = np.asarray(train_ids, np.int32)
        self.full_validation_ids = np.asarray(validation_ids, np.int32)
        self.validation_ids = self.full_validation_ids[:validation_chars + 1]
        self.eval_window = eval_window
        self.vocabulary = vocabulary
        self.prompt_length, self.length = prompt_length, length
        self.corpus_fraction, self.pretrain_steps = float(corpus_fraction), pretrain_steps
        self.window = prompt_length + length - 1
        if not {" ", "\n"} <= set(vocabulary):
            raise ValueError("`vocabulary` must hold ' ' and '\\n': lines end at a newline "
                             "and prompts at a verse line break ('  \\n').")
        break_ids = text.encode_stream("  \n", vocabulary)
        ids = self.train_ids
        ends = np.flatnonzero((ids[:-2] == break_ids[0]) & (ids[1:-1] == break_ids[1])
                              & (ids[2:] == break_ids[2])) + 3
        self.prompt_ends = ends[(ends >= prompt_length) & (ends < len(ids))]
        if not len(self.prompt_ends):
            raise ValueError("`train_ids` holds no verse line break ('  \\n') to prompt from.")
        self._newline = int(text.encode_stream("\n", vocabulary)[0])

    def observe(self, count: int, seed: int) -> Observations:
        rng = np.random.default_rng([seed, 11])
        ends = self.prompt_ends[rng.integers(0, len(self.prompt_ends), count)]
        prompts = self.train_ids[ends[:, None] + np.arange(-self.prompt_length, 0)]
        return Observations(prompts)

    def act(self, model, observations: Observations, temperature: float, epsilon: float,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
        tokens = model.generate_ids(observations.inputs, self.length, temperature,
                                    seed=tf.constant([seed % (2**31 - 1), 7], tf.int32)).numpy()
        return tokens[:, :-1], tokens

    def lines(self, actions: np.ndarray) -> list[str]:
        """The written line of each sample: its characters up to the first newline."""
        lines = []
        for row in np.asarray(actions)[:, self.prompt_length:]:
            stop = np.flatnonzero(row == self._newline)
            written = row[:stop[0]] if len(stop) else row
            lines.append(text.decode_stream(written, self.vocabulary).strip())
        return lines

    def reward(self, observations: Observations, actions: np.ndarray) -> np.ndarray:
        return np.asarray([meter.meter_reward(line) for line in self.lines(actions)],
                          np.float32)

    def targets(self, observations: Observations, model_inputs: np.ndarray,
                actions: np.ndarray) -> dict[str, np.ndarray]:
        return _next_token_rows(actions, self.vocabulary)

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Add training-text windows (reward 0) so that they make ``corpus_fraction``."""
        extra = self.added_rows(len(x))
        if not extra:
            return x, y
        rng = np.random.default_rng([seed, 13])
        starts = rng.integers(0, len(self.train_ids) - self.window - 1, extra)
        tokens = self.train_ids[starts[:, None] + np.arange(self.window + 1)]
        rows = {**_next_token_rows(tokens, self.vocabulary), "reward": np.zeros(extra, np.float32)}
        return _appended(x, y, tokens[:, :-1], rows)

    def evaluate(self, model) -> dict[str, float]:
        return {"validation_nats_per_char": model.nats_per_char(self.validation_ids,
                                                                self.eval_window)}

    def describe(self, actions: np.ndarray) -> dict[str, float]:
        """``distinct_4grams``: distinct word 4-grams ÷ all word 4-grams of the lines."""
        grams = [tuple(words[i:i + 4]) for words in map(meter.words_of, self.lines(actions))
                 for i in range(len(words) - 3)]
        return {"distinct_4grams": len(set(grams)) / max(len(grams), 1)}

    def added_rows(self, count: int) -> int:
        """Training-text windows added to ``count`` rows."""
        return _extra_rows(self.corpus_fraction, count)

    def model_arguments(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}

    def pretraining_data(self, batch_size: int, seed: int) -> dict[str, Any]:
        """Next-token prediction on random windows of the training text, per epoch."""
        batches = window_batches(self.train_ids, self.eval_window, batch_size, seed, 0,
                                 self.pretrain_steps)
        return {"x": batches.repeat(), "steps_per_epoch": self.pretrain_steps,
                "shuffle": False}

    def final_report(self, model, temperature: float, seed: int) -> dict[str, Any]:
        """Ten prompts with the model's lines, and the whole validation stream's nats/char."""
        observations = self.observe(10, seed + 17)
        _, actions = self.act(model, observations, temperature, 0.0, seed)
        prompts = [text.decode_stream(p, self.vocabulary) for p in observations.inputs]
        return {"samples": [{"prompt": p, "line": line, "meter": meter.meter_reward(line)}
                            for p, line in zip(prompts, self.lines(actions))],
                "validation_nats_per_char_full": model.nats_per_char(self.full_validation_ids,
                                                                     self.eval_window)}
