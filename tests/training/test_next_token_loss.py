"""The next-token log-likelihood self-loss: NumPy reference, padding, 2 replicas, bad input."""

import keras
import numpy as np
import pytest

import keras_selfevo as kse

VOCAB, TIME = 7, 5


def build_lm():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((TIME,), dtype="int32")
    h = keras.layers.Embedding(VOCAB, 8)(tokens)
    h = keras.layers.Dense(8, activation="tanh")(h)
    logits = keras.layers.Dense(VOCAB)(h)
    return kse.SelfEvolvingModel(tokens, {"self": logits,
                                          "policy": keras.layers.Softmax()(logits)})


def batch(n=8, pad_from=3):
    rng = np.random.default_rng(1)
    x = rng.integers(1, VOCAB, size=(n, TIME)).astype(np.int32)
    nxt = rng.integers(1, VOCAB, size=(n, TIME)).astype(np.int32)
    nxt[n // 2:, pad_from:] = 0  # the second half is padded after position pad_from
    return x, nxt


def numpy_nll(logits, targets, ignore=None):
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    valid = np.ones_like(nll) if ignore is None else (targets != ignore).astype(float)
    return (nll * valid).sum() / valid.sum()


@pytest.mark.parametrize("ignore", [None, 0])
def test_equals_a_numpy_reference(ignore):
    model = build_lm()
    model.compile(alpha=1.0, self_loss="sparse_categorical_crossentropy", self_from_logits=True,
                  self_ignore_class=ignore)
    x, nxt = batch()
    logits = model.predict(x, verbose=0)["self"]
    got = model.evaluate(x, {"self": nxt}, return_dict=True, verbose=0)["self_loss"]
    np.testing.assert_allclose(got, numpy_nll(logits, nxt, ignore), rtol=1e-5)


def test_padding_is_ignored():
    """Changing the scores at padded positions changes nothing; at real ones it does."""
    model = build_lm()
    model.compile(alpha=1.0, self_loss="sparse_categorical_crossentropy", self_from_logits=True,
                  self_ignore_class=0)
    x, nxt = batch()
    base = model.evaluate(x, {"self": nxt}, return_dict=True, verbose=0)["self_loss"]
    other = nxt.copy()
    other[:4, 0] = 0  # four more padded positions: the mean is over fewer tokens
    fewer = model.evaluate(x, {"self": other}, return_dict=True, verbose=0)["self_loss"]
    logits = model.predict(x, verbose=0)["self"]
    np.testing.assert_allclose(fewer, numpy_nll(logits, other, 0), rtol=1e-5)
    assert abs(fewer - base) > 1e-4


def test_bce_scores_the_one_hot_of_ids():
    model = build_lm()
    model.compile(alpha=1.0, self_from_logits=True)  # BCE, the default
    x, nxt = batch()
    by_ids = model.evaluate(x, {"self": nxt}, return_dict=True, verbose=0)["self_loss"]
    one_hot = np.eye(VOCAB, dtype=np.float32)[nxt]
    by_one_hot = model.evaluate(x, {"self": one_hot}, return_dict=True, verbose=0)["self_loss"]
    np.testing.assert_allclose(by_ids, by_one_hot, rtol=1e-6)


def test_two_replicas_equal_one_device(one_and_two_replicas):
    x, nxt = batch(n=16)
    rng = np.random.default_rng(2)
    y = {"self": nxt, "policy": np.eye(VOCAB, dtype=np.float32)[nxt],
         "reward": rng.uniform(0, 1, 16).astype(np.float32)}
    kwargs = dict(alpha=0.6, self_loss="sparse_categorical_crossentropy", self_from_logits=True,
                  self_ignore_class=0)

    def step(strategy):
        with strategy.scope():
            model = build_lm()
            model.compile(optimizer=keras.optimizers.SGD(0.5), **kwargs)
        logs = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
        return model.get_weights(), logs

    results = one_and_two_replicas(step)
    initial = build_lm().get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(results[0][0], initial)) > 1e-3
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for key in ("loss", "self_loss", "reinforce_loss"):
        np.testing.assert_allclose(results[0][1][key], results[1][1][key], rtol=1e-5)


def test_bad_input_is_a_clear_error():
    model = build_lm()
    with pytest.raises(ValueError, match="`self_loss` must be one of"):
        model.compile(self_loss="cross_entropy")
    model.compile(alpha=1.0, self_loss="sparse_categorical_crossentropy", self_from_logits=True)
    x, nxt = batch()
    with pytest.raises(ValueError, match="integer token ids"):
        model.fit(x, {"self": nxt.astype(np.float32)}, verbose=0)
    with pytest.raises(ValueError, match=r"token ids in \[0, 7\)"):
        model.fit(x, {"self": nxt + VOCAB}, verbose=0)
    with pytest.raises(ValueError, match="needs per-example shape"):
        model.fit(x, {"self": nxt[:, :3]}, verbose=0)


def test_compile_settings_survive_a_keras_round_trip(tmp_path):
    model = build_lm()
    model.compile(alpha=1.0, self_loss="sparse_categorical_crossentropy", self_from_logits=True,
                  self_ignore_class=0)
    x, nxt = batch()
    model.fit(x, {"self": nxt}, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.self_loss.name == "sparse_categorical_crossentropy"
    assert loaded.self_loss.ignore_class == 0 and loaded.self_loss.from_logits
    want = model.evaluate(x, {"self": nxt}, return_dict=True, verbose=0)["self_loss"]
    got = loaded.evaluate(x, {"self": nxt}, return_dict=True, verbose=0)["self_loss"]
    np.testing.assert_allclose(got, want, rtol=1e-6)
