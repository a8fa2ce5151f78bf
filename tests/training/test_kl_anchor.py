"""The reference anchor ``kl_beta * KL(policy || reference)``: NumPy, replicas, errors."""

import keras
import numpy as np
import pytest

import keras_selfevo as kse


def build(seed=0, sequence=False):
    """x → Dense(8, tanh) → {"self": Dense(3, sigmoid), "policy": softmax over 5}."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 3) if sequence else (3,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    return kse.SelfEvolvingModel(inputs, {
        "self": keras.layers.Dense(3, activation="sigmoid")(hidden),
        "policy": keras.layers.Dense(5, activation="softmax")(hidden)})


def batch(n=8, sequence=False):
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(n, 4, 3) if sequence else (n, 3)).astype(np.float32)
    policy = np.eye(5, dtype=np.float32)[rng.integers(0, 5, (n, 4) if sequence else n)]
    return x, {"policy": policy, "reward": rng.uniform(size=n).astype(np.float32)}


def numpy_kl(p, q, sample_weight=None):
    """Mean over samples of the per-position mean of sum_v p log(p / q)."""
    kl = np.sum(p * (np.log(p) - np.log(q)), axis=-1)
    per_sample = kl.reshape(len(kl), -1).mean(axis=1)
    if sample_weight is None:
        return per_sample.mean()
    return np.sum(per_sample * sample_weight) / len(per_sample)


@pytest.mark.parametrize("sequence", [False, True])
def test_kl_equals_numpy_and_adds_to_the_loss(sequence):
    x, y = batch(sequence=sequence)
    model, other = build(0, sequence), build(1, sequence)
    model.compile(optimizer="sgd", alpha=0.3, reward_weighting="normalized", kl_beta=0.25)
    model.set_reference([np.array(w) for w in other.trainable_weights])
    weights = np.linspace(0.5, 1.5, len(x)).astype(np.float32)
    logs = model.evaluate(x, y, sample_weight=weights, batch_size=len(x), verbose=0,
                          return_dict=True)
    p = model.predict(x, verbose=0)["policy"].astype(np.float64)
    q = other.predict(x, verbose=0)["policy"].astype(np.float64)
    expected = numpy_kl(p, q, weights)
    assert expected > 1e-3
    np.testing.assert_allclose(logs["kl"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], 0.3 * logs["self_loss"] + 0.7 * logs["reinforce_loss"] + 0.25 * expected,
        rtol=1e-5)


def test_the_anchor_starts_at_zero_and_pulls_back():
    x, y = batch()
    anchored, free = build(), build()
    for model, beta in ((anchored, 1.0), (free, 0.0)):
        model.compile(optimizer=keras.optimizers.SGD(1.0), alpha=0.0, reward_weighting="raw",
                      kl_beta=beta)
    history = anchored.fit(x, y, batch_size=8, epochs=40, verbose=0).history
    free.fit(x, y, batch_size=8, epochs=40, verbose=0)
    assert history["kl"][0] == 0.0  # the reference is the weights fit started from
    start = build().predict(x, verbose=0)["policy"]
    drift = lambda m: numpy_kl(m.predict(x, verbose=0)["policy"], start)  # noqa: E731
    assert 0 < drift(anchored) < 0.5 * drift(free)
    assert "kl" not in free.history.history


def test_two_replicas_equal_one_device(one_and_two_replicas):
    x, y = batch(n=16, sequence=True)
    reference = [np.array(w) for w in build(1, True).trainable_weights]
    initial = build(0, True).get_weights()

    def step(strategy):
        with strategy.scope():
            model = build(0, True)
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.4,
                          reward_weighting="awr", kl_beta=0.5)
        model.set_reference(reference)
        logs = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
        return model.get_weights(), logs

    (single, single_logs), (replicated, replicated_logs) = one_and_two_replicas(step)
    assert single_logs["kl"][0] > 1e-3
    for a, b in zip(single, replicated):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for key in ("loss", "kl", "reinforce_loss"):
        np.testing.assert_allclose(single_logs[key], replicated_logs[key], rtol=1e-5)


def test_bad_input():
    model = build()
    with pytest.raises(ValueError, match="`kl_beta` must be a number ≥ 0"):
        model.compile(optimizer="sgd", kl_beta=-0.1)
    with pytest.raises(ValueError, match="`kl_beta`"):
        model.compile(optimizer="sgd", kl_beta=float("nan"))
    model.compile(optimizer="sgd", kl_beta=0.1)
    with pytest.raises(ValueError, match="must match the model's trainable weights"):
        model.set_reference([np.zeros(3)])
