"""Dynamic evaluation against a step-by-step eager reference written out here."""

import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo.data import text
from keras_selfevo.zoo.dynamic_evaluation import dynamic_evaluation

VOCABULARY = "abcdefgh .,\n"
TEXT = "a bad cafe. head face, bead. " * 9


def _model(name="gpt"):
    size = (dict(num_layers=1, num_heads=2, width=16, block_size=16) if name == "gpt"
            else dict(units=16, embed_dim=8))
    return kse.zoo.build(name, vocabulary=VOCABULARY, seed=0, **size)


def _reference(model, ids, window, rates, decay):
    """Window by window: score with the current weights, then one SGD step on that window's
    mean log-likelihood, then pull the weights back by ``decay``; eager, op by op."""
    copy = type(model).from_config(model.get_config())
    copy(ids[None, :window])
    copy.set_weights(model.get_weights())
    start = [v.numpy() for v in copy.trainable_variables]
    count = (len(ids) - 1) // window
    total = 0.0
    for index in range(count):
        x = ids[index * window:(index + 1) * window][None]
        y = ids[index * window + 1:(index + 1) * window + 1][None]
        with tf.GradientTape() as tape:
            logits = copy(x, training=False)["self"]
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            loss = tf.reduce_mean(nll)
        total += float(tf.reduce_sum(nll))
        grads = tape.gradient(loss, copy.trainable_variables)
        for variable, grad, rate, first in zip(copy.trainable_variables, grads, rates, start):
            value = variable.numpy() - np.asarray(rate) * tf.convert_to_tensor(grad).numpy()
            variable.assign(value + decay * (first - value))
    return total / (count * window), [v.numpy() for v in copy.trainable_variables]


@pytest.mark.parametrize("name, decay", [("gpt", 0.1), ("char_rnn", 0.0)])
def test_each_window_is_scored_before_its_step_as_written_out(name, decay):
    model = _model(name)
    ids = text.encode_stream(TEXT, VOCABULARY)
    result = dynamic_evaluation(model, ids, 16, optimizer="sgd", learning_rate=0.3,
                                decay=decay)
    rates = [0.3] * len(model.trainable_variables)
    expected, weights = _reference(model, ids, 16, rates, decay)
    np.testing.assert_allclose(result.dynamic, expected, rtol=1e-5)
    for got, want in zip(result.model.trainable_variables, weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)
    # The static score is the model's own, the model given is unchanged, and the steps help
    # on a repetitive text.
    assert result.static == pytest.approx(model.nats_per_char(ids, 16), rel=1e-6)
    assert result.windows == (len(ids) - 1) // 16 and result.chars == result.windows * 16
    assert result.dynamic < result.static - 0.1
    assert model.nats_per_char(ids, 16) == pytest.approx(result.static, rel=1e-6)


def test_per_variable_rates_leave_zero_rate_variables_fixed():
    model = _model()
    ids = text.encode_stream(TEXT, VOCABULARY)
    variables = model.trainable_variables
    rates = [np.full(v.shape, 0.2, "float32") if i == len(variables) - 1 else 0.0
             for i, v in enumerate(variables)]
    rates[-1][..., :3] = 0.5  # per-element rates, as Meta-SGD learns them
    result = dynamic_evaluation(model, ids, 16, rates=rates)
    expected, weights = _reference(model, ids, 16, rates, 0.0)
    np.testing.assert_allclose(result.dynamic, expected, rtol=1e-5)
    for got, before in zip(result.model.trainable_variables[:-1], variables[:-1]):
        np.testing.assert_array_equal(got.numpy(), before.numpy())
    moved = result.model.trainable_variables[-1].numpy()
    np.testing.assert_allclose(moved, weights[-1], rtol=1e-4, atol=1e-6)
    assert np.abs(moved - variables[-1].numpy()).max() > 1e-4


def test_adapt_dynamic_uses_a_learners_own_rates():
    model = _model()
    head = model.layers[-1].name
    learner = kse.MetaLearner(model, "anil", inner_lr=0.4, adapt_layers=[head])
    result = kse.adapt(learner, TEXT, dynamic=True, verbose=0)
    ids = text.encode_stream(TEXT, VOCABULARY)
    expected, _ = _reference(model, ids, 16, learner.inner_rates(), 0.0)
    assert result.after == pytest.approx(expected, rel=1e-5)
    assert result.before == pytest.approx(model.nats_per_char(ids, 16), rel=1e-6)
    assert result.steps == (len(ids) - 1) // 16
    # Any other model steps with Adam, as the validation plays chose.
    plain = kse.adapt(model, TEXT, dynamic=True, learning_rate=0.01, verbose=0)
    adam = dynamic_evaluation(model, ids, 16, optimizer="adam", learning_rate=0.01)
    assert plain.after == adam.dynamic and plain.before == adam.static


@pytest.mark.parametrize("kwargs, message", [
    (dict(dynamic=True, steps=10), "`steps` does not apply with dynamic=True"),
    (dict(dynamic=True, held_out=0.2), "`held_out` does not apply with dynamic=True"),
    (dict(dynamic=True, decay=1.0), "`decay` must be a float in"),
    (dict(dynamic=True, learning_rate=-1.0), "`learning_rate` must be"),
    (dict(decay=0.1), "`decay` applies with dynamic=True only"),
    (dict(dynamic="yes"), "`dynamic` must be one of"),
])
def test_bad_dynamic_settings_are_refused_before_any_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kse.adapt("no-such-model.keras", TEXT, **kwargs)


def test_bad_arguments_name_themselves():
    model = _model()
    ids = text.encode_stream(TEXT, VOCABULARY)
    with pytest.raises(ValueError, match="longer than the model's context"):
        dynamic_evaluation(model, ids, 32)
    with pytest.raises(ValueError, match="fewer than one window"):
        dynamic_evaluation(model, ids[:10], 16)
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        dynamic_evaluation(model, ids, 16, optimizer="rmsprop")
    with pytest.raises(ValueError, match="one rate per trainable variable"):
        dynamic_evaluation(model, ids, 16, rates=[0.1])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        dynamic_evaluation(model, np.full(40, 99), 16)


def test_adam_steps_match_an_eager_loop_and_a_second_text_starts_afresh():
    import keras

    model = _model()
    ids = text.encode_stream(TEXT, VOCABULARY)
    first = dynamic_evaluation(model, ids, 16, optimizer="adam", learning_rate=0.01)
    again = dynamic_evaluation(model, ids, 16, optimizer="adam", learning_rate=0.01)
    assert again.dynamic == first.dynamic  # the reused trace starts from fresh Adam moments
    copy = type(model).from_config(model.get_config())
    copy(ids[None, :16])
    copy.set_weights(model.get_weights())
    adam = keras.optimizers.Adam(0.01)
    total = 0.0
    for index in range((len(ids) - 1) // 16):
        x = ids[index * 16:(index + 1) * 16][None]
        y = ids[index * 16 + 1:(index + 1) * 16 + 1][None]
        with tf.GradientTape() as tape:
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                y, copy(x, training=False)["self"])
            loss = tf.reduce_mean(nll)
        total += float(tf.reduce_sum(nll))
        adam.apply(tape.gradient(loss, copy.trainable_variables), copy.trainable_variables)
    assert first.dynamic == pytest.approx(total / first.chars, rel=1e-5)
