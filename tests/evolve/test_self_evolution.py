import json

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.evolve import BanditClassification, Observations, SelfEvolution
from keras_selfevo.evolve.loop import LoopGeometry

CLASSES = 3


def _tiny_bandit(n=60):
    """Inputs are the one-hot label plus noise: the right class is easy to learn."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, n)
    images = (np.eye(CLASSES)[labels] + 0.1 * rng.normal(size=(n, CLASSES))).astype(np.float32)
    return BanditClassification(images, labels, images, labels, CLASSES)


def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((CLASSES,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    model = kse.SelfEvolvingModel(inputs, {
        "self": keras.layers.Dense(CLASSES, activation="sigmoid")(hidden),
        "policy": keras.layers.Dense(CLASSES, activation="softmax")(hidden),
    })
    model.compile(optimizer=keras.optimizers.Adam(0.05), alpha=0.0, reward_weighting="raw")
    return model


def _expected_reward(model, env):
    probs = model.predict(env.images, verbose=0)["policy"]
    return float(probs[np.arange(len(env.labels)), env.labels].mean())


def test_one_generation_raises_the_expected_reward():
    env, model = _tiny_bandit(), _tiny_model()
    before = _expected_reward(model, env)
    history = SelfEvolution(model, env, samples_per_generation=200, epochs_per_generation=3,
                            batch_size=20, seed=1).run(1, verbose=0)
    after = _expected_reward(model, env)
    assert after > before + 0.05, (before, after)
    assert [row["generation"] for row in history] == [0, 1]
    assert {"mean_reward", "valid_rate", "accuracy", "loss", "reinforce_loss"} <= set(history[1])


def test_keep_strategies_select_the_right_samples():
    loop = SelfEvolution(_tiny_model(), _tiny_bandit(), samples_per_observation=2,
                         keep="best_per_observation")
    rewards = np.array([0.0, 1.0, 0.5, 0.2, 0.0, 0.0], np.float32)
    assert loop._kept(rewards).tolist() == [1, 2, 4]
    loop.keep, loop.top_fraction = "top_fraction", 0.5
    assert loop._kept(rewards).tolist() == [1, 2, 3]
    loop.keep, loop.min_reward = "min_reward", 0.5
    assert loop._kept(rewards).tolist() == [1, 2]


def test_callbacks_receive_each_generation():
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, logs["mean_reward"]))

    loop = SelfEvolution(_tiny_model(), _tiny_bandit(), samples_per_generation=30, batch_size=10)
    history = loop.run(2, callbacks=[Record()], verbose=0)
    assert seen == [(1, history[1]["mean_reward"]), (2, history[2]["mean_reward"])]


def test_resumes_after_the_last_finished_generation(tmp_path):
    def loop(directory):
        return SelfEvolution(_tiny_model(), _tiny_bandit(), samples_per_generation=40,
                             batch_size=10, replay=1, checkpoint_dir=str(directory), seed=3)

    full = loop(tmp_path / "full")
    reference = full.run(3, verbose=0)
    interrupted = loop(tmp_path / "cut")
    interrupted.run(2, verbose=0)  # "crashes" after generation 2
    resumed = loop(tmp_path / "cut")
    history = resumed.run(3, verbose=0)
    assert [row["generation"] for row in history] == [0, 1, 2, 3]
    assert json.dumps(history) == json.dumps(reference)
    for a, b in zip(resumed.model.get_weights(), full.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


class _BrokenRewards(BanditClassification):
    def __init__(self, mode):
        env = _tiny_bandit()
        super().__init__(env.images, env.labels, env.test_images, env.test_labels, CLASSES)
        self.mode = mode

    def reward(self, observations: Observations, actions):
        rewards = super().reward(observations, actions)
        if self.mode == "shape":
            return rewards[:, None].repeat(2, axis=1)
        rewards[0] = np.nan
        return rewards


@pytest.mark.parametrize("mode, message", [("shape", "returned shape \\(30, 2\\)"),
                                           ("nan", "NaN or infinite")])
def test_bad_rewards_are_clear_errors(mode, message):
    model = _tiny_model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=message):
        SelfEvolution(model, _BrokenRewards(mode), samples_per_generation=30).run(1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments_are_clear_errors():
    env = _tiny_bandit()
    with pytest.raises(ValueError, match="`generations` must be a positive integer"):
        SelfEvolution(_tiny_model(), env).run(0)
    inputs = keras.Input((CLASSES,))
    no_policy = kse.SelfEvolvingModel(inputs, {"self": keras.layers.Dense(CLASSES)(inputs)})
    no_policy.compile(alpha=1.0)
    with pytest.raises(ValueError, match="no 'policy' output"):
        SelfEvolution(no_policy, env)
    with pytest.raises(ValueError, match="must be a SelfEvolvingModel"):
        SelfEvolution(keras.Sequential([inputs, keras.layers.Dense(3)]), env)
    with pytest.raises(ValueError, match="`keep` must be one of"):
        SelfEvolution(_tiny_model(), env, keep="best")
    with pytest.raises(ValueError, match="`environment` has no `observe` method"):
        SelfEvolution(_tiny_model(), object())


def test_generation_environment_scores_and_trains_a_char_rnn():
    env = kse.evolve.VerifiableGeneration("0123456789+=", "arithmetic", length=9,
                                          corpus=["1+2=3", "10+5=15"], corpus_fraction=0.5)
    model = kse.zoo.build("char_rnn", vocabulary="0123456789+=", units=16, seed=0)
    model.compile(optimizer="adam", alpha=0.5, reward_weighting="awr")
    history = SelfEvolution(model, env, samples_per_generation=16, batch_size=8).run(
        1, verbose=0)
    assert 0 <= history[1]["mean_reward"] <= 1 and 0 < history[1]["distinct"] <= 1
    x, y = env.corpus_rows(2, seed=0)
    assert x.shape == (2, 10) and y["self"].shape == (2, 10) and y["policy"].shape == (2, 10, 15)
    np.testing.assert_array_equal(y["reward"], [1.0, 1.0])


def test_unrewarded_images_join_the_rows_with_no_action_and_no_policy_term():
    env = _tiny_bandit()
    rewarded = np.arange(6)
    subset = BanditClassification(env.images, env.labels, env.images, env.labels, CLASSES,
                                  rewarded=rewarded, unrewarded_fraction=0.75)
    x = env.images[rewarded][[0, 1, 2, 3, 4, 5, 0, 1]]
    y = {"policy": np.eye(CLASSES, dtype=np.float32)[[0, 1, 2, 0, 1, 2, 1, 1]],
         "reward": np.array([1, 0, 1, 1, 0, 0, 1, 1], np.float32)}
    mixed_x, mixed_y = subset.mix_rows(x, y, seed=4)
    # 8 rewarded rows + 24 unrewarded ones: 75% of the rows; the samples come first.
    assert len(mixed_x) == 32 and set(mixed_y) == {"policy", "reward"}
    np.testing.assert_array_equal(mixed_x[:8], x)
    extra = mixed_x[8:]
    assert not (extra[:, None] == env.images[rewarded][None]).all(-1).any()
    assert (extra[:, None] == env.images[None]).all(-1).any(1).all()
    assert not mixed_y["policy"][8:].any() and not mixed_y["reward"][8:].any()
    np.testing.assert_array_equal(subset.mix_rows(x, y, seed=4)[0], mixed_x)  # seeded
    # The policy term of the added rows is 0 under the weightings the recipes allow: the
    # summed reinforce loss is the rewarded rows' alone.
    for weighting in ("raw", "normalized"):
        model = _tiny_model()
        model.compile(optimizer="adam", alpha=0.0, reward_weighting=weighting)
        total = model.evaluate(mixed_x, mixed_y, batch_size=32, return_dict=True, verbose=0)
        alone = model.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
        if weighting == "raw":  # the same weights: the sums agree
            np.testing.assert_allclose(32 * total["reinforce_loss"],
                                       8 * alone["reinforce_loss"], rtol=1e-5)
        weights = kse.losses.get_reward_weighting(weighting)(mixed_y["reward"]).numpy()
        assert not weights[8:].any() and weights[:8].any()
    assert BanditClassification(env.images, env.labels, env.images, env.labels, CLASSES,
                                rewarded=rewarded).mix_rows(x, y, 4)[0] is x
    with pytest.raises(ValueError, match="`unrewarded_fraction` must be a number in"):
        BanditClassification(env.images, env.labels, env.images, env.labels, CLASSES,
                             rewarded=rewarded, unrewarded_fraction=1.0)
    with pytest.raises(ValueError, match="`unrewarded_fraction` > 0 needs images outside"):
        BanditClassification(env.images, env.labels, env.images, env.labels, CLASSES,
                             unrewarded_fraction=0.5)


def test_planned_steps_are_the_steps_the_loop_takes():
    env = _tiny_bandit()
    subset = BanditClassification(env.images, env.labels, env.images, env.labels, CLASSES,
                                  rewarded=np.arange(10), unrewarded_fraction=0.4)
    settings = dict(samples_per_generation=21, samples_per_observation=2,
                    epochs_per_generation=2, batch_size=16, replay=1, keep="all")
    model = _tiny_model()
    SelfEvolution(model, subset, **settings).run(3, verbose=0)
    # 42 samples + 28 unrewarded rows a generation; two generations' rows from the second.
    expected = 2 * (5 + 9 + 9)
    assert LoopGeometry(**settings).planned_steps(subset, 3) == expected
    assert int(model.optimizer.iterations) == expected
    assert LoopGeometry(**{**settings, "keep": "best_per_observation"}).planned_steps(
        subset, 3) is None


def test_a_rewarded_subset_is_all_the_loop_observes_and_pretraining_sees_every_image():
    env = _tiny_bandit()
    rewarded = np.array([2, 5, 11, 40])
    subset = BanditClassification(env.images, env.labels, env.images, env.labels, CLASSES,
                                  rewarded=rewarded)
    shown = subset.observe(200, seed=3)
    rows = {tuple(row) for row in env.images[rewarded].round(6)}
    assert {tuple(row) for row in shown.inputs.round(6)} == rows
    np.testing.assert_array_equal(shown.hidden, env.labels[(shown.inputs[:, None] ==
                                                              env.images[None]).all(-1).argmax(1)])
    assert len(subset.pretraining_data(8, 0)["x"]) == len(env.images)
    assert subset.supervised_baseline().rewarded is rewarded
    for bad in (np.array([], int), np.array([0, 60])):
        with pytest.raises(ValueError, match="`rewarded` must be non-empty indices"):
            BanditClassification(env.images, env.labels, env.images, env.labels, CLASSES,
                                 rewarded=bad)


@pytest.mark.parametrize("temperature, epsilon", [(2.0, 0.1), (0.5, 0.3), (0.0, 0.2)])
def test_bandit_actions_follow_the_tempered_policy_mixed_with_exploration(temperature, epsilon):
    from keras_selfevo.evolve.environments.bandit import _sample_classes

    probabilities = np.tile([[0.1, 0.2, 0.7]], (30_000, 1)).astype(np.float32)
    actions = _sample_classes(probabilities, temperature, epsilon, seed=4)
    if temperature == 0:
        tempered = np.array([0.0, 0.0, 1.0])
    else:
        tempered = probabilities[0] ** (1 / temperature)
        tempered /= tempered.sum()
    want = (1 - epsilon) * tempered + epsilon / 3
    # 30,000 draws: a frequency's standard error is at most 0.003.
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / len(actions), want,
                               atol=0.012)


def test_restart_base_starts_every_generation_from_the_first_weights():
    env, model = _tiny_bandit(), _tiny_model()
    base = [np.array(w) for w in model.get_weights()]
    starts, fit = [], model.fit
    model.fit = lambda x, y, **kwargs: starts.append(model.get_weights()) or fit(x, y, **kwargs)
    SelfEvolution(model, env, samples_per_generation=40, batch_size=20, restart="base",
                  seed=1).run(3, verbose=0)
    assert len(starts) == 3
    for start in starts:
        for a, b in zip(start, base):
            np.testing.assert_array_equal(a, b)
    assert max(np.abs(a - b).max() for a, b in zip(model.get_weights(), base)) > 1e-4
