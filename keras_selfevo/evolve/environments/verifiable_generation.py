"""VerifiableGeneration: strings a language model writes, scored by a checker."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import text
from keras_selfevo.evolve import rewards as reward_functions
from keras_selfevo.evolve.environments.base import (
    Observations,
    TextEnvironmentBase,
    appended,
    extra_rows,
    next_token_rows,
)


def prompt_of(line: str) -> str:
    """The prompt ``a+b=`` of a line ``a+b=c``."""
    return line[:line.index("=") + 1]


class VerifiableGeneration(TextEnvironmentBase):
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
    share of their prompts ``a+b=`` that the model completes correctly (greedy),
    ``held_out_sampled``, the same with one sample each at temperature 0.8, and
    ``train_prompt_valid``, the greedy figure on as many corpus lines: close figures mean the
    model learned to add; a gap, that it recalls the sums it saw.

    With ``prompted`` (arithmetic), each observation is instead the prompt ``a+b=`` of a
    corpus line, and the model writes the sum: the policy is trained on the tokens it
    sampled after the prompt only (GRPO's setting: a group is several completions of one
    prompt).

    Args:
        vocabulary: The model's characters.
        checker: ``"arithmetic"`` or ``"dyck"``.
        length: Characters to sample per string.
        corpus: Unlabeled strings of the language.
        corpus_fraction: Share of the training rows drawn from ``corpus``.
        held_out: Correct lines ``a+b=c`` none of whose pairs is in ``corpus``
            (``checker="arithmetic"`` only).
        prompted: Observations are the prompts ``a+b=`` of corpus lines (arithmetic).
    """

    # Temperature of the held-out samples of ``held_out_sampled``.
    EVALUATION_TEMPERATURE = 0.8

    def __init__(self, vocabulary: str, checker: str = "arithmetic", length: int = 12,
                 corpus: list[str] | None = None, corpus_fraction: float = 0.0,
                 held_out: list[str] | None = None, prompted: bool = False):
        reward_functions.score([], checker)  # checks the name
        _checks.positive_int(length, "length")
        _checks.number(corpus_fraction, "corpus_fraction", 0.0, 1.0)
        _checks.one_of(prompted, "prompted", (True, False))
        if held_out and checker != "arithmetic":
            raise ValueError(f"`held_out` prompts need checker='arithmetic', got {checker!r}.")
        if held_out and not all(reward_functions.is_correct_sum(line) for line in held_out):
            raise ValueError("`held_out` must hold correct lines 'a+b=c'.")
        if prompted and (checker != "arithmetic" or not corpus
                         or not all(reward_functions.is_correct_sum(line) for line in corpus)):
            raise ValueError("`prompted` needs checker='arithmetic' and a `corpus` of correct "
                             "lines 'a+b=c' (their prompts a+b= are the observations).")
        self.vocabulary, self.checker, self.length = vocabulary, checker, length
        self.corpus = list(corpus or [])
        self.corpus_fraction = float(corpus_fraction)
        self.held_out = list(held_out or [])
        self.prompted = prompted

    def observe(self, count: int, seed: int) -> Observations:
        """``<bos>`` rows; with ``prompted``, ``<bos>a+b=`` rows padded on the right.

        The prompted rows keep each prompt's width (with ``<bos>``) hidden.
        """
        if not self.prompted:
            return Observations(np.full((count, 1), text.BOS, np.int32))
        rng = np.random.default_rng([seed, 11])
        lines = [self.corpus[i] for i in rng.integers(0, len(self.corpus), count)]
        prompts = [prompt_of(line) for line in lines]
        ids = text.encode(prompts, self.vocabulary, add_end=False)
        return Observations(ids, np.array([1 + len(p) for p in prompts]))

    def act(self, model, observations: Observations, temperature: float, epsilon: float,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
        # Every row ends at the same width: <bos>, a line of up to `length`, <eos>.
        width = self.length + 2
        seed_tensor = tf.constant([seed % (2**31 - 1), 3], tf.int32)
        if not self.prompted:
            tokens = model.generate_ids(observations.inputs, width - 1, temperature,
                                        seed=seed_tensor).numpy()
        else:  # one call per prompt width (a call's prompts share one)
            tokens = np.full((len(observations.inputs), width), text.PAD, np.int32)
            for prompt_width in map(int, np.unique(observations.hidden)):
                rows = np.flatnonzero(observations.hidden == prompt_width)
                # The same number of new tokens for every width (and as `completion_rate`
                # asks for): one compiled sampling loop; the row is cut to `width`.
                tokens[rows] = model.generate_ids(
                    observations.inputs[rows, :prompt_width], width - 1, temperature,
                    seed=seed_tensor + [0, prompt_width]).numpy()[:, :width]
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
        # Every next token up to the end (the first <eos> or <pad>) was sampled.
        next_ids = actions[:, 1:]
        ended = np.cumsum(np.isin(next_ids, (text.EOS, text.PAD)), axis=1)
        before_end = (ended == 0) | ((ended == 1) & np.isin(next_ids, (text.EOS, text.PAD)))
        if self.prompted:  # a prompt's tokens were given, not sampled
            given = np.arange(next_ids.shape[1])[None] < (observations.hidden[:, None] - 1)
            before_end = before_end & ~given
        return next_token_rows(actions, self.vocabulary, before_end)

    def corpus_rows(self, count: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``count`` corpus lines as training rows, rewarded by the checker."""
        rng = np.random.default_rng([seed, 5])
        lines = [self.corpus[i] for i in rng.integers(0, len(self.corpus), count)]
        ids = text.encode(lines, self.vocabulary, self.length + 2)
        rewards = reward_functions.score(lines, self.checker)
        return ids[:, :-1], {**next_token_rows(ids, self.vocabulary, np.zeros_like(ids[:, 1:])),
                             "reward": rewards}

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Add corpus lines so that they make ``corpus_fraction`` of the rows."""
        count = self.added_rows(len(x))
        return appended(x, y, *self.corpus_rows(count, seed)) if count else (x, y)

    def added_rows(self, count: int) -> int:
        """Corpus lines added to ``count`` rows."""
        if self.corpus_fraction <= 0 or not self.corpus:
            return 0
        return extra_rows(self.corpus_fraction, count)

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
                "held_out_sampled": self.completion_rate(model, self.held_out,
                                                         self.EVALUATION_TEMPERATURE),
                "train_prompt_valid": self.completion_rate(model, train)}

    def completion_rate(self, model, lines: list[str], temperature: float = 0.0) -> float:
        """Share of ``lines`` whose prompt (up to ``=``) the model completes exactly.

        Greedy, or one sample each at ``temperature`` (seeded).
        """
        prompts = [prompt_of(line) for line in lines]
        correct = 0
        for width in sorted({len(p) for p in prompts}):  # generate needs equal lengths
            group = [p for p in prompts if len(p) == width]
            # One length for every width (the sampling loop is traced once); the line ends
            # at the model's <eos>.
            written = model.generate(group, self.length + 1, temperature=temperature, seed=0)
            correct += int(np.sum(reward_functions.score(written, "arithmetic") >= 1.0))
        return correct / max(len(prompts), 1)

    def describe(self, actions: np.ndarray) -> dict[str, float]:
        """``distinct``: the share of different strings among a generation's samples."""
        texts = self.decode(actions)
        return {"distinct": len(set(texts)) / max(len(texts), 1)}
