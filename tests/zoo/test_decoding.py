"""Cached decoding (gpt's key/value cache, char_rnn's carried state) against the network re-run
over the context for every token, and the sliding window past the block size."""

import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo.zoo import decoding

VOCABULARY = "abcdefghij \n"
MODELS = {
    "gpt": ("gpt", dict(num_layers=2, num_heads=2, width=16, block_size=8)),
    "gru": ("char_rnn", dict(embed_dim=8, units=16, num_layers=2)),
    "lstm": ("char_rnn", dict(embed_dim=8, units=16, cell="lstm")),
}


def _model(case):
    name, kwargs = MODELS[case]
    return kse.zoo.build(name, vocabulary=VOCABULARY, seed=0, **kwargs)


def test_window_start_follows_the_sliding_schedule():
    # Block 8, keep 4: the window fills at t = 8 and then moves by 5 every 5 tokens.
    starts = decoding.window_start(tf.range(24), 8).numpy()
    want = [0] * 8 + [5] * 5 + [10] * 5 + [15] * 5 + [20]
    np.testing.assert_array_equal(starts, want)
    # Every context holds between keep and block tokens, the token itself included.
    sizes = np.arange(24) - starts + 1
    assert sizes[8:].min() == 4 and sizes.max() == 8


@pytest.mark.parametrize("case", sorted(MODELS))
def test_cached_logits_equal_the_uncached_ones_at_every_step(case):
    model = _model(case)
    rng = np.random.default_rng(0)
    total = 30  # past the block size (8): the gpt cache is rebuilt three times
    tokens = tf.constant(rng.integers(3, model.vocab_size, size=(3, total)), tf.int32)
    start = 3
    logits, state = model.decoding_start(tokens, tf.constant(start))
    reference = decoding.uncached_logits(model, tokens, tf.constant(start - 1))
    np.testing.assert_allclose(logits, reference, atol=1e-5)
    for t in range(start, total):
        logits, state = model.decoding_step(tokens, tf.constant(t), state)
        reference = decoding.uncached_logits(model, tokens, tf.constant(t))
        np.testing.assert_allclose(logits, reference, atol=1e-5, err_msg=f"position {t}")


def test_uncached_logits_read_the_sliding_window():
    model = _model("gpt")
    rng = np.random.default_rng(1)
    tokens = rng.integers(3, model.vocab_size, size=(2, 20)).astype(np.int32)
    t = 14  # window_start(14, 8) = 10: the context is tokens 10..14
    got = decoding.uncached_logits(model, tf.constant(tokens), tf.constant(t)).numpy()
    want = model(tokens[:, 10:15], training=False)["self"].numpy()[:, -1]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_greedy_500_tokens_are_the_same_with_and_without_the_cache():
    model = _model("gpt")
    prompt = np.full((2, 1), kse.data.text.BOS, np.int32)
    cached = model.generate_ids(prompt, 500, 0.0, jit_compile=False).numpy()
    uncached = model.generate_ids(prompt, 500, 0.0, use_cache=False, jit_compile=False).numpy()
    np.testing.assert_array_equal(cached, uncached)
    assert cached.shape == (2, 501)


@pytest.mark.parametrize("case", ["gpt", "gru"])
def test_sampled_tokens_are_the_same_with_and_without_the_cache(case):
    model = _model(case)
    prompt = np.array([[1, 4, 5], [1, 6, 7]], np.int32)
    seed = tf.constant([5, 6])
    settings = dict(temperature=1.3, top_k=6, top_p=0.9, seed=seed, jit_compile=False)
    cached = model.generate_ids(prompt, 40, **settings).numpy()
    uncached = model.generate_ids(prompt, 40, use_cache=False, **settings).numpy()
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached[:, :3], prompt)


@pytest.mark.parametrize("case", sorted(MODELS))
def test_xla_and_graph_sample_alike(case):
    # The sampler's random numbers come from integer hashing: the same with XLA. The
    # settings are the compiled loop's inputs, so one XLA compile serves greedy, plain and
    # top-k + top-p sampling (top-k of the whole vocabulary and top-p 1 keep every token).
    model = _model(case)
    prompt = np.array([[1, 4, 5], [1, 7, 7]], np.int32)
    seed = tf.constant([8, 9])
    every = model.vocab_size
    for temperature, top_k, top_p in ((0.0, every, 1.0), (1.0, every, 1.0), (0.7, 4, 0.8)):
        settings = dict(temperature=tf.constant(temperature), top_k=tf.constant(top_k),
                        top_p=tf.constant(top_p), seed=seed)
        np.testing.assert_array_equal(
            model.generate_ids(prompt, 30, jit_compile=True, **settings),
            model.generate_ids(prompt, 30, jit_compile=False, **settings))
    assert len([k for k in model._functions.by_key if k[-1]]) == 1  # one XLA loop


@pytest.mark.parametrize("bad, message", [
    (dict(top_p=1.5), r"`top_p` must be None or a number in \(0, 1\]"),
    (dict(top_k=0), "`top_k` must be None or a positive integer"),
    (dict(temperature=-1.0), "`temperature` must be a number ≥ 0"),
    (dict(length=0), "`length` must be a positive integer"),
    (dict(prompt=np.array([[1, 99]])), r"token ids outside the vocabulary: ids in \[1, 99\]"),
    (dict(prompt=np.zeros((2, 0), np.int32)), "at least one token"),
    (dict(prompt=np.ones((1, 9), np.int32)), r"more than the model's block size"),
    (dict(prompt=np.ones(4, np.int32)), r"int token ids \[batch, time\]"),
])
def test_bad_sampling_arguments_are_clear_errors_before_tracing(bad, message):
    model = _model("gpt")
    arguments = {"prompt": np.array([[1, 4]], np.int32), "length": 4, **bad}
    with pytest.raises(ValueError, match=message) as caught:
        model.generate_ids(**arguments)
    assert "in user code" not in str(caught.value)
    assert not model._functions.by_key  # nothing was traced


def test_a_buffer_shorter_than_half_a_block_compiles():
    model = kse.zoo.build("gpt", vocabulary=VOCABULARY, num_layers=1, num_heads=2, width=8,
                          block_size=32, seed=0)
    tokens = model.generate_ids(np.array([[1]], np.int32), 5, 0.0, jit_compile=True)
    assert tokens.shape == (1, 6)
