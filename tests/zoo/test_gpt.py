"""The zoo's `gpt`: causal, serializable, learns, exports, and refuses bad input clearly."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo import testing
from keras_selfevo.data import text

VOCABULARY = "abcd"


def tiny(**overrides):
    args = dict(vocabulary=VOCABULARY, num_layers=2, num_heads=2, width=16, block_size=12,
                seed=0)
    return kse.zoo.build("gpt", **{**args, **overrides})


def test_is_causal():
    model = tiny()
    rng = np.random.default_rng(0)
    tokens = rng.integers(3, 7, size=(3, 12)).astype(np.int32)
    later = tokens.copy()
    later[:, 7:] = rng.integers(3, 7, size=(3, 5))
    a, b = model(tokens)["self"].numpy(), model(later)["self"].numpy()
    np.testing.assert_array_equal(a[:, :7], b[:, :7])
    assert np.abs(a[:, 7:] - b[:, 7:]).max() > 1e-4


def test_saving_round_trip_in_a_fresh_process(tmp_path):
    tokens = np.random.default_rng(1).integers(3, 7, size=(2, 10)).astype(np.int32)
    loaded = testing.run_model_saving_test(tiny(dropout=0.1), tokens,
                                           {"self": (2, 10, 7), "policy": (2, 10, 7)},
                                           atol=1e-6, tmp_dir=str(tmp_path))
    assert isinstance(loaded, kse.zoo.GPT) and loaded.block_size == 12


def test_learns_a_repeated_pattern():
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    stream = text.encode_stream("abcd" * 200, VOCABULARY)
    x = np.stack([stream[i:i + 12] for i in range(0, 700, 7)])
    y = np.stack([stream[i + 1:i + 13] for i in range(0, 700, 7)])
    model.fit(x, {"self": y}, batch_size=25, epochs=30, verbose=0)
    loss = model.evaluate(x, {"self": y}, return_dict=True, verbose=0)["self_loss"]
    assert loss < 0.02, loss
    prompt = text.encode_stream("abc", VOCABULARY)[None]
    out = model.generate(prompt, 8, temperature=0.0)
    assert text.decode_stream(out[0], VOCABULARY) == "abcdabcdabc"


def test_generation_continues_past_the_block_with_the_last_block_as_context():
    model = tiny()
    prompt = np.full((2, 5), 3, np.int32)
    out = model.generate(prompt, 20, temperature=0.0)
    assert out.shape == (2, 25)
    # Greedy reference step by step, feeding the last block_size tokens.
    tokens = prompt.copy()
    for _ in range(20):
        logits = model(tokens[:, -12:], training=False)["self"].numpy()[:, -1]
        tokens = np.concatenate([tokens, logits.argmax(-1)[:, None].astype(np.int32)], 1)
    np.testing.assert_array_equal(out, tokens)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="`num_heads`=3 must divide `width`=16"):
        tiny(num_heads=3)
    with pytest.raises(ValueError, match="`block_size` must be a positive integer"):
        tiny(block_size=0)
    model = tiny()
    with pytest.raises(ValueError, match="13 positions but the model's block size"):
        model(np.zeros((1, 13), np.int32))
    with pytest.raises(ValueError, match="`prompt` has 13 tokens"):
        model.generate(np.full((1, 13), 3, np.int32), 2)
    with pytest.raises(ValueError, match="outside the model's `vocabulary`: 'xz'"):
        model.generate(["axz"], 2)


@pytest.mark.slow
def test_exports_with_text_signature(tmp_path):
    # A character beyond ASCII in the vocabulary: the text signature decodes UTF-8.
    vocabulary = VOCABULARY + "—"
    model = tiny(vocabulary=vocabulary, num_layers=1)
    report = kse.export.export_for_serving(model, tmp_path / "gpt", generate_length=6)
    # The fresh process ran every signature; differences are measured, not assumed.
    assert report.ok, report
    assert {"serving_default", "serve", "generate", "generate_text"} <= set(report.max_abs_diff)
    assert max(report.max_abs_diff.values()) <= 1e-5
    assert report.max_abs_diff["generate_text"] == 0.0
    loaded = tf.saved_model.load(report.path)
    serving = loaded.signatures["serving_default"]
    assert set(serving.structured_input_signature[1]) == {"tokens"}
    assert set(serving.structured_outputs) == {"self", "policy"}
    batch = kse.export.sample_inputs(model, batch=5)["serving_default"]
    outputs = serving(**{key: tf.constant(value) for key, value in batch.items()})
    assert all(v.shape[0] == 5 and v.dtype == tf.float32 for v in outputs.values())
    settings = {"seed": [5, 5], "length": [4, 4], "temperature": [1.0, 1.0], "top_k": [0, 0],
                "top_p": [1.0, 1.0]}
    out = loaded.signatures["generate_text"](
        prompt=tf.constant(["ab", "c—"]),
        **{key: tf.constant(value) for key, value in settings.items()})["text"].numpy()
    assert [t.decode() for t in out] == model.generate(["ab", "c—"], 4, seed=5)
    # Keras's own export works too.
    model.export(str(tmp_path / "keras_export"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "keras_export"))
    tokens = np.full((1, 4), 3, np.int32)
    np.testing.assert_allclose(served.serve(tokens)["self"].numpy(),
                               model(tokens)["self"].numpy(), atol=1e-5)


def test_token_ids_outside_the_vocabulary_are_a_clear_error_before_any_update():
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [w.numpy() for w in model.trainable_weights]
    x = np.full((4, 8), 3, np.int32)
    x[1, 5] = model.vocab_size + 4  # in the first batch: datasets are checked per batch
    message = (r"the input `x` holds token ids outside the vocabulary: ids in \[3, "
               f"{model.vocab_size + 4}\\] for a vocabulary of {model.vocab_size} ids")
    with pytest.raises(ValueError, match=message):
        model.fit(x, {"self": np.full((4, 8), 3, np.int32)}, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.predict(x, verbose=0)
    batches = tf.data.Dataset.from_tensor_slices(
        (x, {"self": np.full((4, 8), 3, np.int32)})).batch(2)
    with pytest.raises(ValueError, match=message):
        model.fit(batches, verbose=0)
    for w0, w1 in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(w0, w1.numpy())
