"""``nats_per_char``, the metric of every language-model card, against NumPy references.

The references are written the way the nanoGPT anchor scores (``nanogpt_chars.py``):
``n = (len - 1) // W`` consecutive windows of ``W`` inputs, the targets shifted by one, the
tail that does not fill a window dropped, the mean over every target.
"""

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.zoo.language_model import LanguageModel
from tests.references import log_softmax

VOCAB = 7


@keras.saving.register_keras_serializable(package="kse_tests")
class Bigram(LanguageModel):
    """Logits of the next token are a row of a table indexed by the current token."""

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self._set_vocabulary(len(table), None)
        self.table = np.asarray(table, np.float32)

    def call(self, tokens, training=None):
        return self._outputs(keras.ops.take(self.table, tokens, axis=0))


def anchor_metric(log_p_next, stream, window):
    """nanoGPT's scoring, given ``log_p_next(inputs[n, W]) -> [n, W, vocab]``."""
    n = (len(stream) - 1) // window
    xs = stream[: n * window].reshape(n, window)
    ys = stream[1: n * window + 1].reshape(n, window)
    log_p = log_p_next(xs)
    return -np.mean(np.take_along_axis(log_p, ys[..., None], axis=-1))


def test_a_bigram_model_scores_its_own_table():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(VOCAB, VOCAB)).astype(np.float32)
    model = Bigram(table)
    stream = rng.integers(0, VOCAB, size=3 * 5 + 3).astype(np.int32)  # 3 windows, a tail of 2
    got = model.nats_per_char(stream, window=5, batch_size=2)  # batches split the windows
    # By hand: the log-probability of each next token given the current one, over the 15
    # pairs (x_i, x_i+1) for i < 15; the last 2 tokens fill no window and are dropped.
    pairs = [log_softmax(table[stream[i]])[stream[i + 1]] for i in range(15)]
    assert got == pytest.approx(-np.mean(pairs), rel=1e-6)
    assert got == pytest.approx(anchor_metric(lambda x: log_softmax(table[x]), stream, 5),
                                rel=1e-6)
    # The divisor is the 15 scored targets: a 16th would change the figure.
    sixteen = [log_softmax(table[stream[i]])[stream[i + 1]] for i in range(16)]
    assert abs(got - -np.mean(sixteen)) > 1e-4


def test_windows_do_not_overlap_and_start_without_context():
    """With a recurrent model the first position of each window sees no earlier token."""
    model = kse.zoo.build("char_rnn", vocab_size=VOCAB, embed_dim=4, units=8, seed=0)
    rng = np.random.default_rng(1)
    stream = rng.integers(3, VOCAB, size=2 * 6 + 4).astype(np.int32)

    def log_p_next(windows):
        return log_softmax(model.predict(windows, verbose=0)["self"].astype(np.float64))

    want = anchor_metric(log_p_next, stream, 6)
    assert model.nats_per_char(stream, window=6) == pytest.approx(want, rel=1e-5)
    # Scoring the same stream as one long window gives another figure: the windows matter.
    one_window = anchor_metric(log_p_next, stream[: 2 * 6 + 1], 12)
    assert abs(one_window - want) > 1e-4


def test_too_short_a_stream_is_a_clear_error():
    model = Bigram(np.zeros((VOCAB, VOCAB)))
    with pytest.raises(ValueError, match="fewer than one window of 8 \\+ 1"):
        model.nats_per_char(np.zeros(8, np.int32), window=8)
