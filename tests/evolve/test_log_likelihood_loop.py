"""SelfEvolution with the log-likelihood reinforce loss: masks of sampled tokens, PPO's
recorded log-probabilities, and the bandit learning from reward alone."""

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.data import text
from keras_selfevo.evolve import MeterEnvironment, SelfEvolution, VerifiableGeneration
from keras_selfevo.losses import LogLikelihoodReinforceLoss
from tests.evolve.test_self_evolution import _expected_reward, _tiny_bandit, _tiny_model
from tests.references import log_softmax

DIGITS = "0123456789+="


def test_generation_targets_mark_the_sampled_tokens_up_to_the_end():
    env = VerifiableGeneration(DIGITS, length=5)
    ids = lambda s: [text.BOS] + list(text.encode_stream(s, DIGITS))  # noqa: E731
    actions = np.array([ids("1+1") + [text.EOS, text.PAD], ids("12+34")], np.int32)
    mask = env.targets(None, actions[:, :-1], actions)["policy_mask"]
    # "1+1" then <eos>: four sampled next tokens; "12+34" never ended: all five.
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    corpus_x, corpus_y = VerifiableGeneration(DIGITS, length=5, corpus=["1+1=2"],
                                              corpus_fraction=0.5).corpus_rows(3, 0)
    assert corpus_y["policy_mask"].sum() == 0  # given text: not the policy's


def test_meter_targets_leave_the_prompt_out():
    vocabulary = kse.data.shakespeare.vocabulary()
    ids = text.encode_stream("Shall I compare thee  \nto a summer's day  \n" * 8, vocabulary)
    env = MeterEnvironment(ids, ids, vocabulary, prompt_length=6, length=10)
    actions = np.stack([ids[:16], ids[1:17]])
    mask = env.targets(None, actions[:, :-1], actions)["policy_mask"]
    np.testing.assert_array_equal(mask[0], [0] * 5 + [1] * 10)


def _bandit_model(loss, seed=0):
    model = _tiny_model(seed)
    model.compile(optimizer=keras.optimizers.Adam(0.05), alpha=0.0, reward_weighting="raw",
                  reinforce_loss=loss)
    return model


def test_the_bandit_learns_from_reward_with_the_log_likelihood():
    env, model = _tiny_bandit(), _bandit_model("log_likelihood")
    before = _expected_reward(model, env)
    SelfEvolution(model, env, samples_per_generation=100, batch_size=20, seed=1).run(
        3, verbose=0)
    assert _expected_reward(model, env) > before + 0.1


def _first_generation(env, model, temperature=1.0):
    """A generation's training rows, and the policy of the weights that sampled them."""
    loop = SelfEvolution(model, env, samples_per_generation=40, epochs_per_generation=3,
                         batch_size=20, temperature=temperature, seed=1)
    seen, fit = [], model.fit
    model.fit = lambda x, y, **kwargs: seen.append((x, y, model.get_weights())) or fit(
        x, y, **kwargs)
    loop.run(1, verbose=0)
    x, y, weights = seen[0]
    sampler = _tiny_model()
    sampler.set_weights(weights)
    return x, y, sampler.predict(x, verbose=0)["policy"]


def test_clipped_updates_read_the_log_probabilities_recorded_at_sampling():
    env = _tiny_bandit()
    loss = LogLikelihoodReinforceLoss(clip_epsilon=0.2)
    model = _bandit_model(loss)
    x, y, probabilities = _first_generation(env, model)
    want = np.log(np.clip((y["policy"] * probabilities).sum(-1), 1e-7, 1))
    np.testing.assert_allclose(y["old_log_prob"], want, atol=1e-5)


def test_a_tempered_loss_records_log_probabilities_at_the_sampling_temperature():
    env = _tiny_bandit()
    model = _bandit_model(LogLikelihoodReinforceLoss(clip_epsilon=0.2, temperature=0.5))
    with pytest.raises(ValueError, match=r"scores actions at temperature 0.5, but the loop "
                                         r"samples them at `temperature`=1.0"):
        SelfEvolution(model, env, samples_per_generation=40, batch_size=20)
    x, y, probabilities = _first_generation(env, model, temperature=0.5)
    log_p = log_softmax(np.log(probabilities) / 0.5)
    np.testing.assert_allclose(y["old_log_prob"], (y["policy"] * log_p).sum(-1), atol=1e-5)


def test_prompted_sums_keep_the_prompt_and_train_on_the_written_sum_only():
    corpus = ["1+1=2", "12+34=46", "7+80=87", "3+4=7"]
    env = VerifiableGeneration(DIGITS, length=8, corpus=corpus, prompted=True)
    observations = env.observe(6, seed=0)
    widths = observations.hidden
    prompts = [text.decode(row[None, :w], DIGITS)[0] for row, w in
               zip(observations.inputs, widths)]
    assert all(p.endswith("=") and p[:-1] + "=" in {c[:c.index("=") + 1] for c in corpus}
               for p in prompts)
    model = kse.zoo.build("char_rnn", vocabulary=DIGITS, units=8, embed_dim=4, seed=0)
    inputs, actions = env.act(model, observations, 1.0, 0.0, seed=3)
    assert actions.shape == (6, 10) and inputs.shape == (6, 9)
    # Each row starts with its own prompt, unchanged; what follows was sampled.
    for row, prompt_row, width in zip(actions, observations.inputs, widths):
        np.testing.assert_array_equal(row[:width], prompt_row[:width])
    mask = env.targets(observations, inputs, actions)["policy_mask"]
    for row, m, width in zip(actions, mask, widths):
        # Next tokens 1 .. width-1 are the prompt's: never the policy's; the first sampled
        # token (position width) is.
        assert not m[:width - 1].any() and m[width - 1] == 1
        ended = np.flatnonzero(np.isin(row[width:], (text.EOS, text.PAD)))
        last = width + (ended[0] if len(ended) else len(row) - width - 1)
        assert m[width - 1:last].all() and not m[last:].any()
    rewards = env.reward(observations, actions)
    lines = env.decode(actions)
    np.testing.assert_array_equal(rewards, kse.evolve.rewards.score(lines, "arithmetic"))
    assert all(line.startswith(p[:-1]) for line, p in zip(lines, prompts))


def test_prompted_needs_arithmetic_lines():
    import pytest

    with pytest.raises(ValueError, match="`prompted` needs checker='arithmetic'"):
        VerifiableGeneration(DIGITS, length=8, prompted=True)
    with pytest.raises(ValueError, match="`prompted` needs checker='arithmetic'"):
        VerifiableGeneration("()", "dyck", length=8, corpus=["()"], prompted=True)
