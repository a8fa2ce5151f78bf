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
``pretraining_data``, ``supervised_baseline``, ``final_report``, ``check_model``) log metrics
each generation, add rows of the environment's own to a generation's training data (and say
how many), and tell a recipe how to build, check, pretrain and report on a model for this
environment.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

from keras_selfevo.data import text


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

    def check_model(self, model) -> None: ...


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

    def check_model(self, model) -> None:
        """Raise ``ValueError`` when ``model`` cannot act in this environment (none here)."""


class TextEnvironmentBase(EnvironmentBase):
    """Defaults of the environments where a zoo language model writes text.

    Subclasses set ``vocabulary``: the model is built with it and must have it.
    """

    vocabulary: str

    def model_arguments(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}

    def check_model(self, model) -> None:
        """The model must be a zoo language model with this environment's vocabulary."""
        check_language_model(model, self.vocabulary)


def check_language_model(model, vocabulary: str) -> None:
    """A language model of the zoo with ``vocabulary``, or a ``ValueError`` saying what it is."""
    if not callable(getattr(model, "generate_ids", None)):
        raise ValueError(f"the model must be a language model of the zoo (gpt, char_rnn) that "
                         f"writes text; got {getattr(model, 'name', '?')!r}, a "
                         f"{type(model).__name__}.")
    if getattr(model, "vocabulary", None) != vocabulary:
        raise ValueError(f"the model's vocabulary {getattr(model, 'vocabulary', None)!r} is not "
                         f"the environment's {vocabulary!r}.")


def next_token_rows(tokens: np.ndarray, vocabulary: str,
                    sampled: np.ndarray) -> dict[str, np.ndarray]:
    """Training targets of token rows: the one-hot next token (policy) and its id (self).

    ``sampled`` (``[rows, time - 1]``, 1 or 0) marks the next tokens the policy sampled: the
    ``"policy_mask"`` a log-likelihood reinforce loss counts (a prompt's tokens, padding and
    rows of given text do not count).
    """
    next_ids = tokens[:, 1:].astype(np.int32)
    policy = np.eye(text.vocab_size(vocabulary), dtype=np.float32)[next_ids]
    return {"policy": policy, "self": next_ids,
            "policy_mask": np.asarray(sampled, np.float32).reshape(next_ids.shape)}


def extra_rows(fraction: float, count: int) -> int:
    """How many rows to add to ``count`` so that they make ``fraction`` of all (1: as many)."""
    return int(round(fraction / (1 - fraction) * count)) if fraction < 1 else count


def appended(x: np.ndarray, y: dict[str, np.ndarray], extra_x: np.ndarray,
              extra_y: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows ``extra_x, extra_y`` after ``x, y`` (the keys of ``y``)."""
    return (np.concatenate([x, extra_x]),
            {key: np.concatenate([y[key], extra_y[key]]) for key in y})
