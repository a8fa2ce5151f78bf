"""The reward-weighted log-likelihood reinforce loss against NumPy, Keras and one device."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo.losses import LogLikelihoodReinforceLoss
from tests.references import log_softmax

FEATURES, CLASSES, VOCAB, TIME = 6, 4, 7, 5


def classifier(seed=0, softmax=True):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    policy = keras.layers.Dense(CLASSES, activation="softmax" if softmax else None)(hidden)
    return inputs, hidden, policy


def labelled(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, FEATURES)).astype(np.float32)
    labels = rng.integers(0, CLASSES, n)
    return x, np.eye(CLASSES, dtype=np.float32)[labels]


def test_reward_one_is_keras_categorical_crossentropy():
    """One SGD step on labels with reward 1 equals plain Keras with CategoricalCrossentropy."""
    x, targets = labelled()
    inputs, _, policy = classifier()
    ours = kse.SelfEvolvingModel(inputs, policy)  # alpha 0: the policy term alone
    initial = ours.get_weights()
    ours.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.0, reinforce_loss="log_likelihood")
    logs = ours.train_on_batch(x, {"policy": targets, "reward": np.ones(16, np.float32)},
                               return_dict=True)
    inputs, _, policy = classifier()
    plain = keras.Model(inputs, policy)
    plain.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=keras.losses.CategoricalCrossentropy())
    before = plain.evaluate(x, targets, verbose=0)
    plain.train_on_batch(x, targets)
    np.testing.assert_allclose(logs["reinforce_loss"], before, rtol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(ours.get_weights(), initial)) > 1e-3
    for a, b in zip(ours.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_from_logits_scores_the_softmax():
    x, targets = labelled()
    inputs, _, logits = classifier(softmax=False)
    model = kse.SelfEvolvingModel(inputs, logits)
    model.compile(alpha=0.0, reinforce_loss=LogLikelihoodReinforceLoss(from_logits=True))
    rewards = np.linspace(0, 2, 16).astype(np.float32)
    got = model.evaluate(x, {"policy": targets, "reward": rewards}, return_dict=True,
                         verbose=0)["reinforce_loss"]
    scores = model.predict(x, verbose=0)
    log_p = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    want = np.mean(rewards * -(targets * log_p).sum(-1))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def language_model(seed=0):
    return kse.zoo.build("char_rnn", vocab_size=VOCAB, embed_dim=4, units=8, seed=seed)


def sequences(n=8, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(3, VOCAB, size=(n, TIME + 1)).astype(np.int32)
    mask = np.ones((n, TIME), np.float32)
    mask[:, :2] = 0  # a 2-token prompt the policy did not write
    for row, end in enumerate(rng.integers(3, TIME + 1, n)):
        mask[row, end:] = 0  # padding after the end
    y = {"policy": np.eye(VOCAB, dtype=np.float32)[tokens[:, 1:]], "policy_mask": mask,
         "reward": rng.normal(size=n).astype(np.float32), "self": tokens[:, 1:]}
    return tokens[:, :-1], y


def numpy_reinforce(model, x, y, weights, normalize):
    probabilities = model.predict(x, verbose=0)["policy"]
    nll = -np.log(np.clip((y["policy"] * probabilities).sum(-1), 1e-7, 1))  # [batch, time]
    mask = y["policy_mask"]
    if normalize == "token":
        return (weights[:, None] * nll * mask).sum() / mask.sum()
    return np.mean(weights * (nll * mask).sum(1) / np.maximum(mask.sum(1), 1))


@pytest.mark.parametrize("normalize", ["sequence", "token"])
@pytest.mark.parametrize("weighting", ["raw_abs", "grpo"])
def test_sequences_count_the_sampled_positions_only(normalize, weighting):
    x, y = sequences()
    model = language_model()
    if weighting == "raw_abs":
        y["reward"] = np.abs(y["reward"])
        reward_weighting, weights = "raw", y["reward"]
    else:
        reward_weighting = kse.losses.GroupRelativeWeighting(4)
        groups = y["reward"].reshape(-1, 4)
        weights = ((groups - groups.mean(1, keepdims=True))
                   / (groups.std(1, ddof=1, keepdims=True) + 1e-4)).ravel()
    model.compile(alpha=0.0, reward_weighting=reward_weighting,
                  reinforce_loss=LogLikelihoodReinforceLoss(normalize=normalize))
    got = model.evaluate(x, y, return_dict=True, verbose=0, batch_size=8)["reinforce_loss"]
    # Group advantages sum to 0: the mean is a small difference of terms of order 1.
    np.testing.assert_allclose(got, numpy_reinforce(model, x, y, weights, normalize),
                               rtol=1e-5, atol=1e-6)
    # The masked-out positions do not count: changing their targets changes nothing.
    y["policy"][y["policy_mask"] == 0] = np.eye(VOCAB, dtype=np.float32)[3]
    again = model.evaluate(x, y, return_dict=True, verbose=0, batch_size=8)["reinforce_loss"]
    np.testing.assert_allclose(again, got, rtol=1e-6)


@pytest.mark.parametrize("normalize", ["sequence", "token"])
def test_two_replicas_equal_one_device(one_and_two_replicas, normalize):
    x, y = sequences(n=16)
    # Unequal counts per replica: the first half's sequences are shorter.
    y["policy_mask"][:8, 3:] = 0
    initial = language_model().get_weights()
    loss = LogLikelihoodReinforceLoss(normalize=normalize)

    def step(strategy):
        with strategy.scope():
            model = language_model()
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.3,
                          reward_weighting="normalized", reinforce_loss=loss)
        logs = model.fit(x, y, batch_size=16, shuffle=False, verbose=0).history
        return model.get_weights(), logs

    (single, single_logs), (mirrored, mirrored_logs) = one_and_two_replicas(step)
    assert max(np.abs(a - b).max() for a, b in zip(single, initial)) > 1e-4
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(single_logs["reinforce_loss"], mirrored_logs["reinforce_loss"],
                               rtol=1e-5)


def _gradients(model, x, y):
    with tf.GradientTape() as tape:
        terms = model._loss_terms(x, y, model(x, training=False), None)
    return [tf.convert_to_tensor(g).numpy()
            for g in tape.gradient(terms.total, model.trainable_weights)]


def test_the_clipped_ratio_at_the_sampling_weights_is_the_plain_gradient():
    x, y = sequences()
    model = language_model()
    model.compile(alpha=0.0, reward_weighting="normalized", reinforce_loss="log_likelihood")
    plain = _gradients(model, x, y)
    loss = LogLikelihoodReinforceLoss(clip_epsilon=0.2)
    probabilities = model.predict(x, verbose=0)["policy"]
    y["old_log_prob"] = -loss.negative_log_likelihood(y["policy"], probabilities).numpy()
    model.compile(alpha=0.0, reward_weighting="normalized", reinforce_loss=loss)
    clipped = _gradients(model, x, y)
    for a, b in zip(plain, clipped):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert max(np.abs(a).max() for a in plain) > 1e-4
    # Far from the sampling weights the clip stops the push: a ratio beyond 1 + eps with a
    # positive advantage has no gradient.
    y["old_log_prob"] = y["old_log_prob"] - 1.0  # every ratio is e > 1.2
    y["reward"] = np.abs(y["reward"]) + 1.0
    model.compile(alpha=0.0, reward_weighting="raw", reinforce_loss=loss)
    assert max(np.abs(g).max() for g in _gradients(model, x, y)) < 1e-8


@pytest.mark.parametrize("softmax", [True, False])
def test_a_temperature_scores_the_policy_sampled_at_it(softmax):
    """``-log softmax(z / T)[a]`` from logits or probabilities, against NumPy."""
    x, targets = labelled()
    inputs, _, policy = classifier(softmax=softmax)
    model = kse.SelfEvolvingModel(inputs, policy)
    loss = LogLikelihoodReinforceLoss(from_logits=not softmax, temperature=0.6)
    model.compile(alpha=0.0, reinforce_loss=loss)
    rewards = np.linspace(0, 2, 16).astype(np.float32)
    got = model.evaluate(x, {"policy": targets, "reward": rewards}, return_dict=True,
                         verbose=0)["reinforce_loss"]
    output = model.predict(x, verbose=0)
    log_p = log_softmax((np.log(output) if softmax else output) / 0.6)
    np.testing.assert_allclose(got, np.mean(rewards * -(targets * log_p).sum(-1)), rtol=1e-5)


def test_the_tempered_term_is_the_gradient_of_the_expected_reward_at_that_temperature():
    """Every action weighted by its probability at T: the gradient is -d E_T[r] / d theta.

    The score-function identity sum_a pi_T(a) r(a) d log pi_T(a) = d sum_a pi_T(a) r(a);
    the untempered log-likelihood misses it for actions sampled at T != 1.
    """
    temperature = 0.5
    inputs, _, logits = classifier(softmax=False)
    model = kse.SelfEvolvingModel(inputs, logits)
    x = np.repeat(labelled(1)[0], CLASSES, axis=0)  # one observation, every action
    rewards = np.array([0.1, 1.0, -0.5, 2.0], np.float32)
    tempered = keras.ops.softmax(model(x[:1]) / temperature).numpy()[0]
    y = {"policy": np.eye(CLASSES, dtype=np.float32), "reward": rewards}

    with tf.GradientTape() as tape:
        expected = tf.reduce_sum(tf.nn.softmax(model(x[:1]) / temperature)[0] * rewards)
    want = [-g.numpy() / CLASSES for g in tape.gradient(expected, model.trainable_weights)]

    def gradients(loss):
        model.compile(alpha=0.0, reward_weighting="raw", reinforce_loss=loss)
        with tf.GradientTape() as tape:
            terms = model._loss_terms(x, y, model(x, training=False), tempered)
        return [g.numpy() for g in tape.gradient(terms.total, model.trainable_weights)]

    for a, b in zip(gradients(LogLikelihoodReinforceLoss(True, temperature=temperature)), want):
        np.testing.assert_allclose(a, b, atol=1e-6)
    untempered = gradients(LogLikelihoodReinforceLoss(True))
    assert max(np.abs(a - b).max() for a, b in zip(untempered, want)) > 1e-3


def test_settings_survive_a_keras_round_trip(tmp_path):
    x, y = sequences()
    model = language_model()
    model.compile(alpha=0.5, reward_weighting="normalized",
                  reinforce_loss=LogLikelihoodReinforceLoss(normalize="token", clip_epsilon=0.3,
                                                            temperature=0.7))
    y["old_log_prob"] = np.zeros(y["policy_mask"].shape, np.float32)
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.reinforce_loss, LogLikelihoodReinforceLoss)
    assert loaded.reinforce_loss.get_config() == model.reinforce_loss.get_config()
    want = model.evaluate(x, y, return_dict=True, verbose=0)
    got = loaded.evaluate(x, y, return_dict=True, verbose=0)
    np.testing.assert_allclose(got["reinforce_loss"], want["reinforce_loss"], rtol=1e-6)


def test_bad_settings_and_targets_are_clear_errors():
    with pytest.raises(ValueError, match="`normalize` must be one of"):
        LogLikelihoodReinforceLoss(normalize="batch")
    with pytest.raises(ValueError, match="`clip_epsilon` must be None or a number > 0"):
        LogLikelihoodReinforceLoss(clip_epsilon=0.0)
    with pytest.raises(ValueError, match="`temperature` must be a number > 0"):
        LogLikelihoodReinforceLoss(temperature=0.0)
    with pytest.raises(ValueError, match="Unknown `reinforce_loss`='nll'"):
        language_model().compile(reinforce_loss="nll")
    x, y = sequences()
    model = language_model()
    model.compile(alpha=0.0, reinforce_loss=LogLikelihoodReinforceLoss(clip_epsilon=0.2))
    with pytest.raises(ValueError, match=r'`y\["old_log_prob"\]` is missing'):
        model.fit(x, y, verbose=0)
    model.compile(alpha=0.0, reinforce_loss="log_likelihood")
    with pytest.raises(ValueError, match=r'`y\["policy_mask"\]` must have the shape'):
        model.fit(x, {**y, "policy_mask": y["policy_mask"][:, :3]}, verbose=0)
    with pytest.raises(ValueError, match=r'`y\["policy_mask"\]` must lie in \[0, 1\]'):
        model.fit(x, {**y, "policy_mask": y["policy_mask"] * 2}, verbose=0)
