"""SelfEvolution with group-relative weighting and a reference anchor."""

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.evolve import SelfEvolution
from tests.evolve.test_self_evolution import _expected_reward, _tiny_bandit, _tiny_model


def _grpo_model(name="grpo", kl_beta=0.0, seed=0):
    model = _tiny_model(seed)
    model.compile(optimizer=keras.optimizers.Adam(0.05), alpha=0.0, reward_weighting=name,
                  kl_beta=kl_beta)
    return model


@pytest.mark.parametrize("name", ["grpo", "rloo"])
def test_groups_stay_whole_and_the_expected_reward_rises(name):
    env, model = _tiny_bandit(), _grpo_model(name)
    before = _expected_reward(model, env)
    loop = SelfEvolution(model, env, samples_per_generation=50, samples_per_observation=4,
                         epochs_per_generation=3, batch_size=20, seed=1)
    trained_on, fit = [], model.fit
    model.fit = lambda x, y, **kwargs: trained_on.append((x, y)) or fit(x, y, **kwargs)
    history = loop.run(2, verbose=0)
    assert _expected_reward(model, env) > before + 0.05
    assert model.reward_weighting.group_size == 4
    # What fit saw: rows in fours that share their observation (the shuffle moved whole
    # groups), in another order than the observations were drawn.
    x, _ = trained_on[-1]
    groups = x.reshape(-1, 4, x.shape[-1])
    assert np.all(groups == groups[:, :1])
    drawn = env.observe(50, 1 * 1_000_003 + 2).inputs
    assert not np.array_equal(groups[:, 0], drawn)
    assert len(history) == 3


def test_the_reference_is_the_start_of_the_loop():
    env, model = _tiny_bandit(), _grpo_model(kl_beta=0.5)
    start = [np.array(w) for w in model.trainable_weights]
    model.set_reference([w + 1.0 for w in start])  # replaced by the loop's start
    history = SelfEvolution(model, env, samples_per_generation=50, samples_per_observation=4,
                            batch_size=20, seed=1).run(2, verbose=0)
    assert 0 <= history[1]["kl"] < history[2]["kl"]
    for frozen, initial in zip(model._reference.variables, start):
        np.testing.assert_array_equal(frozen.numpy(), initial)


def test_bad_group_settings_are_clear_errors_before_any_work():
    env = _tiny_bandit()
    with pytest.raises(ValueError, match="`samples_per_observation` must be ≥ 2"):
        SelfEvolution(_grpo_model(), env, samples_per_observation=1)
    with pytest.raises(ValueError, match="`keep` must be 'all'"):
        SelfEvolution(_grpo_model(), env, samples_per_observation=2, keep="top_fraction")
    with pytest.raises(ValueError, match=r"`batch_size` \(10\) must be a multiple"):
        SelfEvolution(_grpo_model(), env, samples_per_observation=4, batch_size=10)
    fixed = _tiny_model()
    fixed.compile(optimizer="adam", alpha=0.0,
                  reward_weighting=kse.losses.GroupRelativeWeighting(3))
    with pytest.raises(ValueError, match="group_size=3 but `samples_per_observation` is 4"):
        SelfEvolution(fixed, env, samples_per_observation=4, batch_size=12)
    with pytest.raises(ValueError, match="Unknown `reward_weighting`='gpro'"):
        _tiny_model().compile(optimizer="adam", reward_weighting="gpro")
