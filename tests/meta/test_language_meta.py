"""MetaLearner on the zoo's language models: exact second-order meta-gradients, fit, adapt."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse

VOCABULARY = "abcdef"


def tiny(name, dtype="float32"):
    keras.config.set_dtype_policy(dtype)
    try:
        if name == "gpt":
            return kse.zoo.build("gpt", vocabulary=VOCABULARY, num_layers=1, num_heads=2,
                                 width=8, block_size=6, seed=0)
        return kse.zoo.build("char_rnn", vocabulary=VOCABULARY, embed_dim=4, units=5, seed=0)
    finally:
        keras.config.set_dtype_policy("float32")


def token_tasks(tasks=2, shots=2, window=6, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 3 + len(VOCABULARY), size=(4, tasks, shots, window + 1))
    ids = ids.astype(np.int32)
    return (ids[0, ..., :-1], ids[0, ..., 1:]), (ids[1, ..., :-1], ids[1, ..., 1:])


def next_token_nll(net, weights, x, y):
    logits = net.stateless_call(weights, [tf.convert_to_tensor(v)
                                          for v in net.non_trainable_variables],
                                x, training=True)[0]["self"]
    log_p = tf.nn.log_softmax(logits, axis=-1)
    return -tf.reduce_mean(tf.gather(log_p, y, batch_dims=2))


def meta_objective(net, theta, data, inner_lr):
    """Mean over tasks of the query NLL after one inner SGD step, written out independently."""
    (sx, sy), (qx, qy) = data
    losses = []
    for t in range(len(sx)):
        fast = [tf.constant(w) for w in theta]
        with tf.GradientTape() as tape:
            tape.watch(fast)
            loss = next_token_nll(net, fast, sx[t], sy[t])
        fast = [w - inner_lr * tf.convert_to_tensor(g)
                for w, g in zip(fast, tape.gradient(loss, fast))]
        losses.append(float(next_token_nll(net, fast, qx[t], qy[t])))
    return float(np.mean(losses))


def meta_step_gradient(net, algorithm, data, inner_lr):
    learner = kse.MetaLearner(net, algorithm, inner_lr=inner_lr)
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    before = [v.numpy().copy() for v in net.trainable_variables]
    learner.train_on_batch(data)
    gradient = [b - v.numpy() for b, v in zip(before, net.trainable_variables)]
    for variable, value in zip(net.trainable_variables, before):
        variable.assign(value)
    return gradient


@pytest.mark.parametrize("name", ["char_rnn", "gpt"])
def test_second_order_meta_gradient_equals_central_differences(name):
    net = tiny(name, "float64")
    data = token_tasks()
    theta = [v.numpy().copy() for v in net.trainable_variables]
    maml = meta_step_gradient(net, "maml", data, 0.5)
    fomaml = meta_step_gradient(net, "fomaml", data, 0.5)
    rng = np.random.default_rng(1)
    eps = 1e-6
    for _ in range(3):  # Directional derivatives along random directions of all weights.
        direction = [rng.normal(size=w.shape) for w in theta]
        plus = meta_objective(net, [w + eps * d for w, d in zip(theta, direction)], data, 0.5)
        minus = meta_objective(net, [w - eps * d for w, d in zip(theta, direction)], data, 0.5)
        numeric = (plus - minus) / (2 * eps)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(maml, direction))
        first_order = sum(float(np.sum(g * d)) for g, d in zip(fomaml, direction))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
        assert abs(first_order - numeric) > 1e-4 * max(1.0, abs(numeric))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "reptile", "anil"])
def test_meta_training_a_gpt_on_play_tasks_beats_the_characters_frequencies(algorithm):
    streams = [s[:20_000] for s in kse.data.shakespeare_streams("train").values()][:4]
    net = kse.zoo.build("gpt", vocabulary=kse.data.shakespeare.vocabulary(), num_layers=1,
                        num_heads=2, width=16, block_size=16, seed=0)
    extra = {"adapt_layers": ["embedding"]} if algorithm == "anil" else {}
    learner = kse.MetaLearner(net, algorithm, inner_lr=0.5, **extra)
    learner.compile(optimizer=keras.optimizers.Adam(1e-2))
    tasks = kse.data.text_tasks(streams, shots=4, queries=4, window=16, meta_batch_size=4,
                                seed=0)
    fixed = kse.data.text_tasks(streams, shots=4, queries=4, window=16, meta_batch_size=4,
                                seed=99, num_meta_batches=2)
    before = learner.evaluate(fixed, verbose=0)
    history = learner.fit(tasks, steps_per_epoch=300, verbose=0)
    after = learner.evaluate(fixed, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # Below the queries' unigram entropy: the adapted model uses context, which the
    # characters' frequencies alone could not give.
    targets = np.concatenate([query_y.numpy().ravel() for (_, _), (_, query_y) in fixed])
    frequencies = np.bincount(targets) / len(targets)
    unigram = -np.sum(frequencies[frequencies > 0] * np.log(frequencies[frequencies > 0]))
    assert after < unigram - 0.05, (before, after, unigram)


def test_unknown_output_name_is_refused():
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    inputs = keras.Input((2,))
    functional = keras.Model(inputs, {"a": keras.layers.Dense(1)(inputs)})
    with pytest.raises(ValueError, match="`task_output`='b' is not an output of the model"):
        kse.MetaLearner(functional, task_output="b")
    assert kse.MetaLearner(net).task_output is None
    assert kse.MetaLearner(tiny("gpt")).task_output == "self"
