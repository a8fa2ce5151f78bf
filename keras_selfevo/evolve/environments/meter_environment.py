"""MeterEnvironment: a language model writes the next line of verse; its meter is scored."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import text
from keras_selfevo.data.language_data import window_batches
from keras_selfevo.evolve import meter
from keras_selfevo.evolve.environments.base import (
    Observations,
    TextEnvironmentBase,
    appended,
    extra_rows,
    next_token_rows,
)


class MeterEnvironment(TextEnvironmentBase):
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

    With ``novelty`` > 0 the reward also asks for new wording: a line's meter reward is
    multiplied by ``1 - novelty * share`` where ``share`` is the part of its word 4-grams
    that occur more than once among the generation's lines
    (:func:`~keras_selfevo.evolve.meter.repeated_shares`). A loop that learns a few stock
    lines then stops being paid for them, which keeps the writing varied. The loop's
    ``valid_rate`` then counts the lines that are perfect and worded anew; each generation
    also logs ``perfect_lines``, the share of perfect lines however worded.

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
        novelty: Weight in [0, 1] of the repeated-wording discount of the reward.
    """

    def __init__(self, train_ids: np.ndarray, validation_ids: np.ndarray, vocabulary: str, *,
                 prompt_length: int = 16, length: int = 48, corpus_fraction: float = 0.0,
                 validation_chars: int = 50_000, eval_window: int = 64,
                 pretrain_steps: int = 500, novelty: float = 0.0):
        _checks.positive_int(prompt_length, "prompt_length")
        _checks.positive_int(length, "length")
        _checks.number(corpus_fraction, "corpus_fraction", 0.0, 1.0, high_open=True)
        _checks.positive_int(validation_chars, "validation_chars")
        _checks.positive_int(eval_window, "eval_window")
        _checks.positive_int(pretrain_steps, "pretrain_steps")
        self.novelty = _checks.number(novelty, "novelty", 0.0, 1.0)
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
        lines = self.lines(actions)
        rewards = np.asarray([meter.meter_reward(line) for line in lines], np.float32)
        if self.novelty:
            rewards *= 1.0 - self.novelty * meter.repeated_shares(lines)
        return rewards

    def targets(self, observations: Observations, model_inputs: np.ndarray,
                actions: np.ndarray) -> dict[str, np.ndarray]:
        # The tokens after the prompt are the model's.
        sampled = np.arange(actions.shape[1] - 1) >= self.prompt_length - 1
        return next_token_rows(actions, self.vocabulary,
                               np.broadcast_to(sampled, (len(actions), len(sampled))))

    def mix_rows(self, x: np.ndarray, y: dict[str, np.ndarray],
                 seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Add training-text windows (reward 0) so that they make ``corpus_fraction``."""
        extra = self.added_rows(len(x))
        if not extra:
            return x, y
        rng = np.random.default_rng([seed, 13])
        starts = rng.integers(0, len(self.train_ids) - self.window - 1, extra)
        tokens = self.train_ids[starts[:, None] + np.arange(self.window + 1)]
        rows = {**next_token_rows(tokens, self.vocabulary, np.zeros_like(tokens[:, 1:])),
                "reward": np.zeros(extra, np.float32)}
        return appended(x, y, tokens[:, :-1], rows)

    def evaluate(self, model) -> dict[str, float]:
        return {"validation_nats_per_char": model.nats_per_char(self.validation_ids,
                                                                self.eval_window)}

    def describe(self, actions: np.ndarray) -> dict[str, float]:
        """``distinct_4grams``: distinct word 4-grams ÷ all word 4-grams of the lines.

        With ``novelty``, also ``perfect_lines``: the share of lines that scan perfectly.
        """
        lines = self.lines(actions)
        grams = [gram for line in lines for gram in meter.word_ngrams(line)]
        described = {"distinct_4grams": len(set(grams)) / max(len(grams), 1)}
        if self.novelty:
            described["perfect_lines"] = float(np.mean([meter.is_pentameter(line)
                                                        for line in lines]))
        return described

    def added_rows(self, count: int) -> int:
        """Training-text windows added to ``count`` rows."""
        return extra_rows(self.corpus_fraction, count)

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
