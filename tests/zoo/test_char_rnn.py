import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.data import text
from keras_selfevo.evolve import rewards


def test_greedy_generation_equals_a_step_by_step_reference():
    model = kse.zoo.build("char_rnn", vocabulary="()[]", units=16, seed=0)
    prompt = text.encode(["(", "["], "()[]", add_end=False)
    out = model.generate(prompt, 6, temperature=0.0)
    tokens = prompt.copy()
    for _ in range(6):
        logits = model(tokens, training=False)["self"].numpy()[:, -1]
        tokens = np.concatenate([tokens, logits.argmax(-1)[:, None].astype(np.int32)], 1)
    np.testing.assert_array_equal(out, tokens)


def test_sampling_is_seeded_and_text_in_text_out():
    model = kse.zoo.build("char_rnn", vocabulary="()[]", units=16, seed=0)
    a = model.generate(["(", "["], 8, temperature=1.5, top_k=3, seed=4)
    b = model.generate(["(", "["], 8, temperature=1.5, top_k=3, seed=4)
    assert a == b and all(isinstance(t, str) for t in a)
    assert a[0].startswith("(") and a[1].startswith("[")
    with pytest.raises(ValueError, match="same length"):
        model.generate(["(", "(("], 4)
    with pytest.raises(ValueError, match="`length` must be a positive integer"):
        model.generate(["("], 0)


def _unigram_bce(targets: np.ndarray) -> float:
    """BCE of the best predictor that ignores context: the token frequencies."""
    p = np.clip(targets.reshape(-1, targets.shape[-1]).mean(0), 1e-7, 1 - 1e-7)
    per_token = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    return float(per_token.mean())


@pytest.mark.slow
def test_learns_the_dyck_language(tmp_path):
    vocabulary = "()[]"
    train = kse.data.load("selfevo_text/dyck", split="train", data_dir=str(tmp_path))
    held_out = kse.data.load("selfevo_text/dyck", split="validation", data_dir=str(tmp_path))
    train_ds = text.language_model_dataset(train, vocabulary, length=25)
    test_ds = text.language_model_dataset(held_out, vocabulary, length=25)
    model = kse.zoo.build("char_rnn", vocabulary=vocabulary, units=64, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), alpha=1.0,
                  self_loss="binary_crossentropy")
    model.fit(train_ds.shuffle(20000, seed=0).batch(64), epochs=2, verbose=0)
    loss = model.evaluate(test_ds.batch(256), return_dict=True, verbose=0)["self_loss"]
    ids = np.concatenate([y["self"] for _, y in test_ds.batch(1000).as_numpy_iterator()])
    targets = np.eye(model.vocab_size)[ids]
    # Context is what the language is about: the model must beat the best context-free
    # predictor by a wide margin (well-formedness needs the bracket stack).
    assert loss < 0.6 * _unigram_bce(targets), (loss, _unigram_bce(targets))
    samples = model.generate([""] * 200, 26, temperature=1.0, seed=0)
    valid = np.mean([rewards.is_dyck(s) for s in samples])
    assert valid >= 0.9, (valid, samples[:10])
