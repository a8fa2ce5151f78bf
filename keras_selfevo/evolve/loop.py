"""SelfEvolution: act → reward → learn with SelfEvolvingModel's objective → repeat."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_selfevo._internal import checks as _checks
from keras_selfevo._internal.files import move_into_place
from keras_selfevo.evolve.environments import LOOP_METHODS, Environment, Observations
from keras_selfevo.losses.reward_weighting import GroupRelativeWeighting
from keras_selfevo.training import SelfEvolvingModel


def _keep_all(rewards: np.ndarray, loop: SelfEvolution) -> np.ndarray:
    return np.arange(len(rewards))


def _keep_min_reward(rewards: np.ndarray, loop: SelfEvolution) -> np.ndarray:
    return np.flatnonzero(rewards >= loop.min_reward)


def _keep_top_fraction(rewards: np.ndarray, loop: SelfEvolution) -> np.ndarray:
    count = max(1, int(round(loop.top_fraction * len(rewards))))
    return np.sort(np.argsort(-rewards, kind="stable")[:count])


def _keep_best_per_observation(rewards: np.ndarray, loop: SelfEvolution) -> np.ndarray:
    groups = rewards.reshape(-1, loop.samples_per_observation)
    return np.arange(len(groups)) * loop.samples_per_observation + groups.argmax(axis=1)


# The keep rules: the indices of a generation's samples that it trains on.
KEEP_RULES = {"all": _keep_all, "best_per_observation": _keep_best_per_observation,
              "top_fraction": _keep_top_fraction, "min_reward": _keep_min_reward}
KEEP = tuple(KEEP_RULES)


@dataclasses.dataclass(frozen=True)
class LoopGeometry:
    """How many samples a generation draws, which it keeps and how it trains on them.

    The loop's settings that fix its groups and its number of ``fit`` steps, in one place:
    :class:`SelfEvolution` and the evolve recipe (which plans alpha over the loop's steps)
    both read them from here.
    """

    samples_per_generation: int = 512
    samples_per_observation: int = 1
    epochs_per_generation: int = 1
    batch_size: int = 64
    keep: str = "all"
    replay: int = 0

    def __post_init__(self):
        for name in ("samples_per_generation", "samples_per_observation",
                     "epochs_per_generation", "batch_size"):
            _checks.positive_int(getattr(self, name), name)
        _checks.one_of(self.keep, "keep", KEEP)
        _checks.non_negative_int(self.replay, "replay")

    def group_size(self, weighting: Any) -> int:
        """Samples per group of a group-relative ``weighting`` (1 for other weightings).

        Raises:
            ValueError: these settings would break the groups.
        """
        if not isinstance(weighting, GroupRelativeWeighting):
            return 1
        size = self.samples_per_observation
        if size < 2:
            raise ValueError("`samples_per_observation` must be ≥ 2 with group-relative "
                             f"reward weighting ({weighting.baseline} baseline): a group needs "
                             f"at least two samples to compare; got {size}.")
        if weighting.group_size not in (None, size):
            raise ValueError(f"The model's GroupRelativeWeighting has group_size="
                             f"{weighting.group_size} but `samples_per_observation` is "
                             f"{size}; they must be equal.")
        if self.keep != "all":
            raise ValueError(f"`keep` must be 'all' with group-relative reward weighting "
                             f"(keeping some samples would break the groups), got "
                             f"{self.keep!r}.")
        if self.batch_size % size:
            raise ValueError(f"`batch_size` ({self.batch_size}) must be a multiple of "
                             f"`samples_per_observation` ({size}) with group-relative reward "
                             "weighting: a batch holds whole groups.")
        return size

    def planned_steps(self, environment: Environment, generations: int,
                      weighting: Any = None) -> int | None:
        """The ``fit`` steps of ``generations`` generations, or None if unknown.

        Known with ``keep="all"``: every generation trains on its samples, the rows the
        environment adds (``environment.added_rows``) and ``replay`` earlier generations,
        trimmed to whole groups of ``weighting``.
        """
        if self.keep != "all":
            return None
        rows = self.samples_per_generation * self.samples_per_observation
        added = getattr(environment, "added_rows", None)
        rows += added(rows) if callable(added) else 0
        rows -= rows % self.group_size(weighting)
        total = 0
        for generation in range(1, generations + 1):
            count = rows * min(generation, self.replay + 1)
            total += (-(-count // min(self.batch_size, count)) * self.epochs_per_generation
                      if count else 0)
        return total


class SelfEvolution:
    """Each generation, the model acts, the environment rewards, the model learns.

    A generation: observe ``samples_per_generation`` observations; sample
    ``samples_per_observation`` actions for each with the model's policy (``temperature``,
    ``epsilon`` exploration; ``tensorflow_probability`` distributions); score them; keep
    all, the best per observation, the ``top_fraction`` with the highest reward, or those
    with a reward ≥ ``min_reward`` (RAFT / ReST style); then ``fit`` the model for
    ``epochs_per_generation`` on
    ``(x, {"policy": one_hot(action), "reward": r, "self"?: ...})`` plus ``replay`` earlier
    generations, with the objective, alpha and reward weighting the model was compiled
    with. ``restart="base"`` starts each generation from the weights the loop began with;
    ``"continue"`` keeps learning.

    The history has one row per generation, generation 0 being the model before any
    update: ``mean_reward``, ``valid_rate`` (share of samples with reward 1), ``kept``,
    the environment's metrics (e.g. ``accuracy``) and the last epoch's losses. Keras
    callbacks receive each row in ``on_epoch_end`` (one "epoch" per generation).

    With ``checkpoint_dir``, each finished generation is saved (model, history, replay);
    ``run`` resumes after the last finished generation.

    Group-relative weighting (a model compiled with ``reward_weighting="grpo"`` or
    ``"rloo"``, :class:`~keras_selfevo.losses.GroupRelativeWeighting`): the
    ``samples_per_observation`` samples of an observation form a group; the loop keeps
    every sample (``keep="all"``), shuffles whole groups, and needs a ``batch_size`` that
    is a multiple of the group size. A model compiled with ``kl_beta`` > 0 is anchored to
    the weights the loop began with (:meth:`SelfEvolvingModel.set_reference`).

    Examples:
        >>> env = BanditClassification(images, labels, test_images, test_labels)
        >>> model = kse.zoo.build("mnist_cnn", input_shape=images.shape[1:], num_classes=10)
        >>> model.compile(optimizer="adam", alpha=0.3, reward_weighting="normalized")
        >>> history = SelfEvolution(model, env, samples_per_generation=1000).run(10)
        >>> history[-1]["accuracy"]  # held-out accuracy learned from reward alone

    Args:
        model: A compiled :class:`~keras_selfevo.SelfEvolvingModel` with a policy output.
        environment: An :class:`~keras_selfevo.evolve.Environment`.
        samples_per_generation: Observations per generation.
        samples_per_observation: Actions sampled for each observation.
        epochs_per_generation: ``fit`` epochs on a generation's data.
        batch_size: ``fit`` batch size.
        temperature: Sampling temperature (0: greedy). A log-likelihood reinforce loss scores
            the actions at 1 (the output as is) or, with its ``temperature``, at this one.
        epsilon: Probability of a uniformly random action (classification environments).
        keep: ``"all"``, ``"best_per_observation"``, ``"top_fraction"`` or ``"min_reward"``.
        top_fraction: The share kept with ``keep="top_fraction"``.
        min_reward: The lowest reward kept with ``keep="min_reward"``.
        restart: ``"continue"`` or ``"base"``.
        replay: Earlier generations whose samples are trained on again.
        checkpoint_dir: Where finished generations are saved, for resuming.
        seed: Seed of observations and sampling.
    """

    def __init__(self, model: SelfEvolvingModel, environment: Environment, *,
                 samples_per_generation: int = 512, samples_per_observation: int = 1,
                 epochs_per_generation: int = 1, batch_size: int = 64, temperature: float = 1.0,
                 epsilon: float = 0.0, keep: str = "all", top_fraction: float = 0.5,
                 min_reward: float = 1.0,
                 restart: str = "continue", replay: int = 0, checkpoint_dir: str | None = None,
                 seed: int = 0):
        if not isinstance(model, SelfEvolvingModel):
            raise ValueError(f"`model` must be a SelfEvolvingModel, got {type(model).__name__}.")
        outputs = model.declared_outputs
        if isinstance(outputs, Mapping) and "policy" not in outputs:
            raise ValueError(f"`model` has no 'policy' output (its outputs: {sorted(outputs)}); "
                             "the loop samples actions from it.")
        if getattr(model, "optimizer", None) is None:
            raise ValueError("`model` must be compiled (SelfEvolvingModel.compile) first.")
        for name in LOOP_METHODS:
            if not callable(getattr(environment, name, None)):
                raise ValueError(f"`environment` has no `{name}` method (see "
                                 "keras_selfevo.evolve.Environment; EnvironmentBase gives "
                                 "the optional ones defaults).")
        check = getattr(environment, "check_model", None)
        if callable(check):
            check(model)
        self.geometry = LoopGeometry(samples_per_generation, samples_per_observation,
                                     epochs_per_generation, batch_size, keep, replay)
        _checks.one_of(restart, "restart", ("continue", "base"))
        _checks.number(top_fraction, "top_fraction", 0.0, 1.0, low_open=True)
        _checks.number(epsilon, "epsilon", 0.0, 1.0)
        _checks.number(temperature, "temperature", 0.0)
        scored_at = model.reinforce_loss.temperature
        if scored_at != 1.0 and scored_at != temperature:
            raise ValueError(f"The model's reinforce loss scores actions at temperature "
                             f"{scored_at}, but the loop samples them at `temperature`="
                             f"{temperature}: compile it with the sampling temperature (or 1).")
        _checks.number(min_reward, "min_reward")
        self.group_size = self._group_size(model, self.geometry)
        self.model, self.environment = model, environment
        self.samples_per_generation = samples_per_generation
        self.samples_per_observation = samples_per_observation
        self.epochs_per_generation = epochs_per_generation
        self.batch_size, self.temperature, self.epsilon = batch_size, temperature, epsilon
        self.keep, self.top_fraction, self.min_reward = keep, top_fraction, float(min_reward)
        self.restart, self.replay = restart, replay
        self.checkpoint_dir, self.seed = checkpoint_dir, seed
        self.history: list[dict[str, float]] = []
        self._buffer: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        self._base_weights = [np.array(w) for w in model.get_weights()]
        self._reference_weights = [np.array(w) for w in model.trainable_weights]

    @staticmethod
    def _group_size(model: SelfEvolvingModel, geometry: LoopGeometry) -> int:
        """Check the grouping; give the model's group-relative weighting its group size."""
        weighting = model.reward_weighting
        size = geometry.group_size(weighting)
        if size > 1 and weighting.group_size is None:
            # The weighting is traced into the train function: retrace with the size.
            model.reward_weighting = weighting.with_group_size(size)
            model.train_function = model.test_function = None
        return size

    def planned_steps(self, generations: int) -> int | None:
        """The ``fit`` steps of ``generations`` generations (None with a keep rule)."""
        return self.geometry.planned_steps(self.environment, generations,
                                           self.model.reward_weighting)

    # ----------------------------------------------------------------------- one round
    def _act_and_score(self, generation: int):
        seed = self.seed * 1_000_003 + generation
        observations = self.environment.observe(self.samples_per_generation, seed)
        repeats = self.samples_per_observation
        if repeats > 1:
            observations = Observations(
                np.repeat(observations.inputs, repeats, axis=0),
                None if observations.hidden is None else np.repeat(observations.hidden, repeats,
                                                                   axis=0))
        inputs, actions = self.environment.act(self.model, observations, self.temperature,
                                               self.epsilon, seed)
        rewards = np.asarray(self.environment.reward(observations, actions))
        count = len(actions)
        if rewards.shape != (count,):
            raise ValueError(f"`environment.reward` returned shape {rewards.shape}; expected "
                             f"one reward per action, ({count},).")
        if not np.all(np.isfinite(rewards)):
            raise ValueError("`environment.reward` returned NaN or infinite rewards.")
        return observations, inputs, actions, rewards.astype(np.float32)

    def _kept(self, rewards: np.ndarray) -> np.ndarray:
        return KEEP_RULES[self.keep](rewards, self)

    def _training_rows(self, generation, observations, inputs, actions, rewards):
        kept = self._kept(rewards)
        targets = self.environment.targets(observations, inputs, actions)
        x = inputs[kept]
        y = {key: value[kept] for key, value in targets.items()}
        y["reward"] = rewards[kept]
        x, y = self.environment.mix_rows(x, y, self.seed + generation)
        # Added rows (corpus lines) come after the samples: trimming keeps whole groups.
        # Corpus lines score alike, so their groups weigh 0 and they train the self-loss.
        whole = len(x) - len(x) % self.group_size
        x, y = x[:whole], {key: value[:whole] for key, value in y.items()}
        if "old_log_prob" in getattr(self.model.reinforce_loss, "target_keys", ()):
            y["old_log_prob"] = self._log_probabilities(x, y["policy"])
        return x, y

    def _log_probabilities(self, x: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``log pi(a | x)`` of the rows' actions under the weights that sampled them.

        A clipped reinforce loss (``clip_epsilon``) measures how far each update moved the
        policy from these.
        """
        if not len(x):
            return np.zeros(actions.shape[:-1], np.float32)
        out = self.model.predict(x, batch_size=self.batch_size, verbose=0)
        policy = out["policy"] if isinstance(out, dict) else out
        return -self.model.reinforce_loss.negative_log_likelihood(actions, policy).numpy()

    # ------------------------------------------------------------------------- the run
    def run(self, generations: int, callbacks: Sequence[keras.callbacks.Callback] = (),
            verbose: int = 1) -> list[dict[str, float]]:
        """Run until ``generations`` generations are done (counting resumed ones).

        Returns:
            The history: a dict per generation, generation 0 first.
        """
        _checks.positive_int(generations, "generations")
        start = self._restore()
        callback_list = keras.callbacks.CallbackList(list(callbacks), model=self.model)
        bar = keras.utils.Progbar(generations, unit_name="generation") if verbose else None
        if self.model.kl_beta:
            self.model.set_reference(self._reference_weights)
        callback_list.on_train_begin()
        if not self.history:
            _, _, actions, rewards = self._act_and_score(0)
            self.history.append(self._evaluate(0, actions, rewards, losses={}))
        for generation in range(start + 1, generations + 1):
            callback_list.on_epoch_begin(generation)
            if self.restart == "base":
                self.model.set_weights(self._base_weights)
            observations, inputs, actions, rewards = self._act_and_score(generation)
            rows = self._training_rows(generation, observations, inputs, actions, rewards)
            self._buffer = (self._buffer + [rows])[-(self.replay + 1):]
            # Shuffled by (seed, generation), so a resumed run trains on what an
            # uninterrupted one would.
            x = np.concatenate([r[0] for r in self._buffer])
            order = self._order(len(x), generation)
            x = x[order]
            y = {key: np.concatenate([r[1][key] for r in self._buffer])[order]
                 for key in rows[1]}
            losses = {}
            if len(x):  # with keep="min_reward" a generation may keep nothing
                fit = self.model.fit(x, y, batch_size=min(self.batch_size, len(x)),
                                     epochs=self.epochs_per_generation, verbose=0, shuffle=False)
                losses = {key: float(values[-1]) for key, values in fit.history.items()}
            row = self._evaluate(generation, actions, rewards, losses=losses)
            self.history.append(row)
            self._save(generation)
            callback_list.on_epoch_end(generation, dict(row))
            if bar is not None:
                bar.update(generation, [(k, row[k]) for k in ("mean_reward", "valid_rate")])
            if getattr(self.model, "stop_training", False):
                break
        callback_list.on_train_end()
        return self.history

    def _order(self, count: int, generation: int) -> np.ndarray:
        """A permutation of the rows that moves whole groups (of 1 without grouping)."""
        rng = np.random.default_rng([self.seed, generation, 1])
        if self.group_size == 1:
            return rng.permutation(count)
        groups = rng.permutation(count // self.group_size)
        return (groups[:, None] * self.group_size + np.arange(self.group_size)).ravel()

    def _evaluate(self, generation: int, actions: np.ndarray, rewards: np.ndarray,
                  losses: dict) -> dict[str, float]:
        metrics = {**self.environment.evaluate(self.model),
                   **self.environment.describe(actions)}
        return {"generation": generation, "mean_reward": float(rewards.mean()),
                "valid_rate": float(np.mean(rewards >= 1.0)), **metrics, **losses}

    # ----------------------------------------------------------------- checkpointing
    def _save(self, generation: int) -> None:
        """Write the finished generation beside the last one, then swap it in."""
        if not self.checkpoint_dir:
            return
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".generation-", dir=self.checkpoint_dir)
        # The weights file holds the optimizer state too, so learning continues exactly.
        self.model.save_weights(os.path.join(staging, "model.weights.h5"))
        with open(os.path.join(staging, "history.json"), "w") as handle:
            json.dump(self.history, handle)
        np.savez(os.path.join(staging, "replay.npz"), **{
            f"{i}/{key}": value for i, (x, y) in enumerate(self._buffer)
            for key, value in {"x": x, **y}.items()})
        move_into_place(staging, os.path.join(self.checkpoint_dir, "last"))

    def _restore(self) -> int:
        """Load the last finished generation from ``checkpoint_dir``; return its number."""
        last = os.path.join(self.checkpoint_dir or "", "last")
        if not self.checkpoint_dir or not os.path.isdir(last) or self.history:
            return len(self.history) - 1 if self.history else 0
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(last, "model.weights.h5"))
        with open(os.path.join(last, "history.json")) as handle:
            self.history = json.load(handle)
        buffer: dict[int, dict[str, np.ndarray]] = {}
        with np.load(os.path.join(last, "replay.npz")) as data:
            for key in data.files:
                index, name = key.split("/", 1)
                buffer.setdefault(int(index), {})[name] = data[key]
        self._buffer = [(rows.pop("x"), rows) for _, rows in sorted(buffer.items())]
        return int(self.history[-1]["generation"])
