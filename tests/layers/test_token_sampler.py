import numpy as np
import pytest
import tensorflow as tf

from keras_selfevo import layers, testing

LOGITS = np.log(np.array([[0.1, 0.2, 0.3, 0.4]], np.float32))


def _frequencies(temperature, top_k=None, draws=20000):
    logits = np.repeat(LOGITS, draws, axis=0)
    ids = layers.sample_tokens(logits, temperature, top_k, seed=tf.constant([1, 2])).numpy()
    return np.bincount(ids, minlength=4) / draws


def test_frequencies_follow_the_tempered_softmax():
    # 20000 draws: the standard error of a frequency is ≤ 0.0036; allow 4 of them.
    for temperature in (1.0, 0.5, 2.0):
        probs = np.exp(LOGITS[0] / temperature)
        np.testing.assert_allclose(_frequencies(temperature), probs / probs.sum(), atol=0.015)


def test_top_k_and_greedy():
    freq = _frequencies(1.0, top_k=2)
    assert freq[0] == 0 and freq[1] == 0
    np.testing.assert_allclose(freq[2:], [3 / 7, 4 / 7], atol=0.015)
    assert layers.sample_tokens(np.repeat(LOGITS, 5, 0), 0.0).numpy().tolist() == [3] * 5
    # A temperature tensor of 0 is greedy too.
    greedy = layers.sample_tokens(np.repeat(LOGITS, 5, 0), tf.constant(0.0),
                                  seed=tf.constant([0, 1]))
    assert greedy.numpy().tolist() == [3] * 5


def test_layer_helper_and_errors():
    testing.run_layer_test(layers.TokenSampler, {"temperature": 0.0, "top_k": 2},
                           np.repeat(LOGITS, 3, 0), expected_output_shape=(3,),
                           expected_num_trainable_weights=0, fresh_process=False,
                           run_jit_compile=False)
    with pytest.raises(ValueError, match="`temperature` must be a number ≥ 0"):
        layers.TokenSampler(temperature=-1.0)
    with pytest.raises(ValueError, match="`top_k` must be None or a positive integer"):
        layers.TokenSampler(top_k=0)


def test_top_p_keeps_the_smallest_nucleus():
    # Probabilities 0.4, 0.3, 0.2, 0.1: top_p 0.6 keeps 0.4 and 0.3 (0.4 alone is < 0.6).
    logits = np.repeat(LOGITS, 20000, axis=0)
    ids = layers.sample_tokens(logits, 1.0, seed=tf.constant([3, 4]), top_p=0.6).numpy()
    freq = np.bincount(ids, minlength=4) / len(ids)
    assert freq[0] == 0 and freq[1] == 0
    np.testing.assert_allclose(freq[2:], [3 / 7, 4 / 7], atol=0.015)
    # A nucleus smaller than the top id keeps the top id only.
    ids = layers.sample_tokens(logits[:50], 1.0, seed=tf.constant([3, 4]), top_p=0.1).numpy()
    assert ids.tolist() == [3] * 50
    with pytest.raises(ValueError, match=r"`top_p` must be None or a number in \(0, 1\]"):
        layers.sample_tokens(logits, 1.0, top_p=0.0)
