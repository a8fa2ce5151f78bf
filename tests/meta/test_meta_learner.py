import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from tests.references import log_softmax


def tiny_mlp(dtype="float32", seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((1,), dtype=dtype),
        keras.layers.Dense(6, activation="tanh", dtype=dtype, name="hidden"),
        keras.layers.Dense(1, dtype=dtype, name="head"),
    ])


def task_batch(dtype="float32", tasks=3, shots=5, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(tasks, shots, 1)).astype(dtype) for _ in range(4)]
    return (arrays[0], arrays[1]), (arrays[2], arrays[3])


def meta_objective(net, theta, data, inner_lr, steps, rates=None):
    """The MAML objective written out with NumPy-checkable pieces, for finite differences."""
    (sx, sy), (qx, qy) = data
    losses = []
    for t in range(len(sx)):
        fast = [tf.constant(w) for w in theta]
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(fast)
                pred, _ = net.stateless_call(fast, [], sx[t])
                loss = tf.reduce_mean(tf.square(sy[t] - pred))
            grads = tape.gradient(loss, fast)
            lrs = rates if rates is not None else [inner_lr] * len(fast)
            fast = [w - lr * g for w, lr, g in zip(fast, lrs, grads)]
        pred, _ = net.stateless_call(fast, [], qx[t])
        losses.append(float(tf.reduce_mean(tf.square(qy[t] - pred))))
    return float(np.mean(losses))


def learner_gradients(learner, data):
    """The gradient of one meta-step, read off an SGD(lr=1) update."""
    before = [v.numpy().copy() for v in learner.trainable_variables]
    learner.train_on_batch(data)
    return [b - v.numpy() for b, v in zip(before, learner.trainable_variables)]


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_meta_gradient_equals_finite_differences(steps):
    net = tiny_mlp("float64")
    data = task_batch("float64")
    learner = kse.MetaLearner(net, "maml", inner_lr=0.1, inner_steps=steps)
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    theta = [v.numpy().copy() for v in net.trainable_variables]
    grads = learner_gradients(learner, data)
    eps = 1e-6
    for index, weight in enumerate(theta):
        numeric = np.zeros_like(weight)
        for position in np.ndindex(weight.shape):
            for sign in (1, -1):
                shifted = [w.copy() for w in theta]
                shifted[index][position] += sign * eps
                numeric[position] += sign * meta_objective(net, shifted, data, 0.1, steps)
        numeric /= 2 * eps
        np.testing.assert_allclose(grads[index], numeric, rtol=1e-5, atol=1e-8)


def test_fomaml_step_is_the_first_order_formula_and_differs_from_maml():
    data = task_batch()
    (sx, sy), (qx, qy) = data
    net = tiny_mlp()
    theta = [v.numpy().copy() for v in net.trainable_variables]
    # First order: the query-loss gradient at the adapted weights, averaged over tasks.
    expected = [np.zeros_like(w) for w in theta]
    for t in range(len(sx)):
        fast = [tf.constant(w) for w in theta]
        with tf.GradientTape() as tape:
            tape.watch(fast)
            loss = tf.reduce_mean(tf.square(sy[t] - net.stateless_call(fast, [], sx[t])[0]))
        fast = [w - 0.1 * g for w, g in zip(fast, tape.gradient(loss, fast))]
        with tf.GradientTape() as tape:
            tape.watch(fast)
            loss = tf.reduce_mean(tf.square(qy[t] - net.stateless_call(fast, [], qx[t])[0]))
        for e, g in zip(expected, tape.gradient(loss, fast)):
            e += g.numpy() / len(sx)
    fomaml = kse.MetaLearner(net, "fomaml", inner_lr=0.1)
    fomaml.compile(optimizer=keras.optimizers.SGD(1.0))
    first_order = learner_gradients(fomaml, data)
    for got, want in zip(first_order, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    net2 = tiny_mlp()
    maml = kse.MetaLearner(net2, "maml", inner_lr=0.1)
    maml.compile(optimizer=keras.optimizers.SGD(1.0))
    second_order = learner_gradients(maml, data)
    assert max(np.abs(a - b).max() for a, b in zip(first_order, second_order)) > 1e-4


def test_metasgd_meta_gradient_over_weights_and_rates_equals_finite_differences():
    net = tiny_mlp("float64")
    data = task_batch("float64")
    learner = kse.MetaLearner(net, "metasgd", inner_lr=0.1, inner_steps=2)
    rng = np.random.default_rng(3)
    for rate in learner.inner_lrs:  # per-parameter rates, not all alike
        rate.assign(rng.uniform(0.05, 0.2, rate.shape))
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    theta = [v.numpy().copy() for v in net.trainable_variables]
    rates = [r.numpy().copy() for r in learner.inner_lrs]
    before = {id(v): v.numpy().copy() for v in learner.trainable_variables}
    learner.train_on_batch(data)
    step = {id(v): before[id(v)] - v.numpy() for v in learner.trainable_variables}
    weight_grads = [step[id(v)] for v in net.trainable_variables]
    rate_grads = [step[id(r)] for r in learner.inner_lrs]
    assert max(np.abs(g).max() for g in rate_grads) > 1e-6  # the rates receive gradients
    eps = 1e-6
    for _ in range(4):  # directional derivatives along random directions of both
        d_theta = [rng.normal(size=w.shape) for w in theta]
        d_rates = [rng.normal(size=r.shape) for r in rates]
        value = [meta_objective(net, [w + sign * eps * d for w, d in zip(theta, d_theta)],
                                data, None, 2,
                                rates=[r + sign * eps * d for r, d in zip(rates, d_rates)])
                 for sign in (1, -1)]
        numeric = (value[0] - value[1]) / (2 * eps)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(weight_grads + rate_grads,
                                                            d_theta + d_rates))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-10)


def test_anil_adapts_only_the_head():
    net = tiny_mlp()
    learner = kse.MetaLearner(net, "anil", inner_lr=0.5, adapt_layers=["head"])
    (sx, sy), _ = task_batch()
    fast = learner.fast_weights(sx[0], sy[0], steps=2)
    names = [v.path for v in net.trainable_variables]
    for name, original, adapted in zip(names, net.trainable_variables, fast):
        changed = np.abs(original.numpy() - adapted.numpy()).max() > 0
        assert changed == ("/head/" in name), name
    learner.compile(optimizer=keras.optimizers.SGD(0.1))
    hidden_before = net.get_layer("hidden").kernel.numpy().copy()
    learner.train_on_batch(task_batch())
    assert np.abs(net.get_layer("hidden").kernel.numpy() - hidden_before).max() > 0


def test_reptile_moves_toward_weights_adapted_by_hand():
    net = tiny_mlp()
    data = task_batch(tasks=2)
    (sx, sy), (qx, qy) = data
    theta = [v.numpy().copy() for v in net.trainable_variables]
    # Each task: 3 SGD steps (rate 0.1) on its support and query data together, written out.
    targets = []
    for t in range(2):
        x, y = np.concatenate([sx[t], qx[t]]), np.concatenate([sy[t], qy[t]])
        fast = [tf.constant(w) for w in theta]
        for _ in range(3):
            with tf.GradientTape() as tape:
                tape.watch(fast)
                loss = tf.reduce_mean(tf.square(y - net.stateless_call(fast, [], x)[0]))
            fast = [w - 0.1 * g for w, g in zip(fast, tape.gradient(loss, fast))]
        targets.append([w.numpy() for w in fast])
    learner = kse.MetaLearner(net, "reptile", inner_lr=0.1, inner_steps=3)
    learner.compile(optimizer=keras.optimizers.SGD(0.5))
    learner.train_on_batch(data)
    for index, (before, after) in enumerate(zip(theta, net.trainable_variables)):
        mean_target = np.mean([target[index] for target in targets], axis=0)
        np.testing.assert_allclose(after.numpy(), before + 0.5 * (mean_target - before),
                                   atol=1e-6)
    assert max(np.abs(a.numpy() - b).max() for a, b in zip(net.trainable_variables, theta)) > 1e-4


def test_adapt_returns_a_new_model_and_leaves_the_learner_untouched():
    tasks = kse.data.sinusoid_tasks(shots=10, queries=10, meta_batch_size=1, seed=3)
    (sx, sy), (qx, qy) = next(iter(tasks))
    net = tiny_mlp()
    learner = kse.MetaLearner(net, "maml", inner_lr=0.01, eval_inner_steps=10)
    before = [w.copy() for w in net.get_weights()]
    adapted = learner.adapt(sx[0], sy[0])
    assert adapted is not net and isinstance(adapted, keras.Model)
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
    mse = lambda model: float(np.mean((model.predict(qx[0], verbose=0) - qy[0]) ** 2))  # noqa
    assert mse(adapted) < mse(net)


def test_sinusoid_tasks_are_deterministic_and_in_range():
    first = list(kse.data.sinusoid_tasks(5, 7, 4, seed=1, num_meta_batches=2))
    again = list(kse.data.sinusoid_tasks(5, 7, 4, seed=1, num_meta_batches=2))
    other = next(iter(kse.data.sinusoid_tasks(5, 7, 4, seed=2)))
    (sx, sy), (qx, qy) = first[0]
    assert sx.shape == (4, 5, 1) and qy.shape == (4, 7, 1)
    for a, b in zip(tf.nest.flatten(first), tf.nest.flatten(again)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(sx, other[0][0])
    assert np.abs(sx).max() <= 5 and np.abs(sy).max() <= 5
    resumed = next(iter(kse.data.sinusoid_tasks(5, 7, 4, seed=1, first_meta_batch=1)))
    for a, b in zip(tf.nest.flatten(resumed), tf.nest.flatten(first[1])):
        np.testing.assert_array_equal(a, b)


def test_meta_training_lowers_post_adaptation_loss():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(40, activation="relu"),
                            keras.layers.Dense(40, activation="relu"), keras.layers.Dense(1)])
    learner = kse.MetaLearner(net, "maml", inner_lr=0.01)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3))
    evaluation = kse.data.sinusoid_tasks(10, 10, 25, seed=99, num_meta_batches=4)
    before = learner.evaluate(evaluation, verbose=0)
    learner.fit(kse.data.sinusoid_tasks(10, 10, 25, seed=0), steps_per_epoch=300, verbose=0)
    after = learner.evaluate(evaluation, verbose=0)
    assert after < 0.7 * before


def test_learner_saves_and_reloads_with_metasgd_rates(tmp_path):
    net = tiny_mlp()
    learner = kse.MetaLearner(net, "metasgd", inner_lr=0.05, inner_steps=2)
    learner.compile(optimizer=keras.optimizers.Adam(1e-2))
    learner.fit(kse.data.sinusoid_tasks(5, 5, 4, num_meta_batches=3), verbose=0)
    path = str(tmp_path / "learner.keras")
    learner.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, kse.MetaLearner) and loaded.algorithm == "metasgd"
    assert loaded.inner_steps == 2
    for a, b in zip(learner.inner_lrs, loaded.inner_lrs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    (sx, sy), _ = task_batch()
    np.testing.assert_allclose(loaded.adapt(sx[0], sy[0]).predict(sx[0], verbose=0),
                               learner.adapt(sx[0], sy[0]).predict(sx[0], verbose=0), atol=1e-6)
    loaded.fit(kse.data.sinusoid_tasks(5, 5, 4, num_meta_batches=2), verbose=0)


def test_bad_arguments_fail_before_work():
    net = tiny_mlp()
    with pytest.raises(ValueError, match="Unknown `algorithm`='mamal'"):
        kse.MetaLearner(net, "mamal")
    with pytest.raises(ValueError, match="`inner_lr` must be a number > 0"):
        kse.MetaLearner(net, inner_lr=0.0)
    with pytest.raises(ValueError, match="`adapt_layers` must name the layers"):
        kse.MetaLearner(net, "anil")
    with pytest.raises(ValueError, match="unknown layers \\['nope'\\]"):
        kse.MetaLearner(net, "anil", adapt_layers=["nope"])
    with pytest.raises(ValueError, match="`model` must be a built keras.Model"):
        kse.MetaLearner(keras.Sequential([keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match="`inner_steps` must be a positive integer"):
        kse.MetaLearner(net, inner_steps=0)
    learner = kse.MetaLearner(net)
    learner.compile(optimizer="sgd")
    x = np.zeros((2, 3, 1), np.float32)
    with pytest.raises(ValueError, match="same example shape"):
        learner.train_on_batch(((x, x), (np.zeros((2, 3, 2), np.float32), x)))


def _one_meta_step(net_builder, data, loss, **kwargs):
    net = net_builder()
    learner = kse.MetaLearner(net, inner_lr=0.1, loss=loss, **kwargs)
    learner.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [w.copy() for w in net.get_weights()]
    value = learner.train_on_batch(data)
    return value, [a - b for a, b in zip(net.get_weights(), before)], learner


def conv_bn_net():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same"),
        keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(3),
    ])


def float64_conv_net(side, filters):
    """Conv → BatchNorm → ReLU → max-pool → Dense(3), float64, seeded."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((side, side, 1), dtype="float64"),
        keras.layers.Conv2D(filters, 3, padding="same", dtype="float64"),
        keras.layers.BatchNormalization(dtype="float64"), keras.layers.ReLU(dtype="float64"),
        keras.layers.MaxPooling2D(2, dtype="float64"), keras.layers.Flatten(dtype="float64"),
        keras.layers.Dense(3, dtype="float64")])


def test_per_task_gradients_in_the_task_loop_equal_the_plain_meta_gradient():
    """The loop path (each task's gradient taken inside tf.map_fn) against one tape over a
    Python loop of the tasks' post-adaptation losses: the same meta-gradient, float64."""
    net = float64_conv_net(8, 4)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 8, 8, 1))
    y = np.eye(3)[rng.integers(0, 3, (3, 6))]
    qx = rng.normal(size=(3, 9, 8, 8, 1))
    qy = np.eye(3)[rng.integers(0, 3, (3, 9))]
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    learner = kse.MetaLearner(net, inner_lr=0.3, inner_steps=2, loss=loss)
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    assert not learner.vectorize
    theta = [tf.convert_to_tensor(v) for v in net.trainable_variables]
    with tf.GradientTape() as tape:
        tape.watch(theta)
        losses = [learner.task_loss(learner.fast_weights(x[t], y[t], 2, theta), qx[t], qy[t])[0]
                  for t in range(3)]
        plain = tape.gradient(tf.add_n(losses) / 3, theta)
    ours = learner_gradients(learner, ((x, y), (qx, qy)))
    for a, b in zip(ours, plain):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["maml", "metasgd", "fomaml"])
def test_several_inner_steps_trace_one_step_function_with_the_same_gradient(algorithm):
    """Inside the meta-step's graph, inner steps run as calls of one traced step function:
    the model's task loss is traced once for all three inner steps (plus once for the query),
    and the meta-gradient equals one tape over eager, op-by-op inner steps (float64)."""
    net = float64_conv_net(6, 3)
    rng = np.random.default_rng(2)
    x, qx = rng.normal(size=(2, 4, 6, 6, 1)), rng.normal(size=(2, 5, 6, 6, 1))
    y, qy = np.eye(3)[rng.integers(0, 3, (2, 4))], np.eye(3)[rng.integers(0, 3, (2, 5))]
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    learner = kse.MetaLearner(net, algorithm, inner_lr=0.2, inner_steps=3, loss=loss)
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    sources = [tf.convert_to_tensor(v) for v in net.trainable_variables]
    rates = [tf.convert_to_tensor(r) for r in learner.inner_lrs]
    with tf.GradientTape() as tape:  # eager: each inner step's ops run one by one
        tape.watch(sources + rates)
        losses = [learner.task_loss(learner.fast_weights(x[t], y[t], 3, sources, rates or None),
                                     qx[t], qy[t])[0] for t in range(2)]
        plain = tape.gradient(tf.add_n(losses) / 2, rates + sources)  # the learner's order
    assert len(learner.trainable_variables) == len(plain)
    traced = []
    task_loss = learner.task_loss
    learner.task_loss = lambda *args: (traced.append(1), task_loss(*args))[1]
    ours = learner_gradients(learner, ((x, y), (qx, qy)))
    assert len(traced) == 2
    for a, b in zip(ours, plain):
        # Meta-SGD's rates are float32 variables: an SGD(1) update of a rate near 0.2 is
        # read off to float32's spacing there (1.5e-8).
        atol = 1e-10 if a.dtype == np.float64 else 3e-8
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-7, atol=atol)


def gru_net():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5, 2)), keras.layers.GRU(4), keras.layers.Dense(1)])


def test_batchnorm_conv_net_second_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 8, 8, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, (2, 6))]
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    data = ((x, y), (x, y))
    maml, maml_step, learner = _one_meta_step(conv_bn_net, data, loss, vectorize=True)
    looped, looped_step, looped_learner = _one_meta_step(conv_bn_net, data, loss)
    fomaml, fomaml_step, _ = _one_meta_step(conv_bn_net, data, loss, algorithm="fomaml")
    assert learner.vectorize and not looped_learner.vectorize and np.isfinite(maml)
    for a, b in zip(maml_step, looped_step):  # graph loop and vectorized tasks agree
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert max(np.abs(a - b).max() for a, b in zip(maml_step, fomaml_step)) > 1e-5
    # Batch statistics are used: the moving statistics are untouched by meta-training.
    bn = learner.model.layers[1]
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(4, np.float32))


def norm_net(kind):
    keras.utils.set_random_seed(0)
    norm = (keras.layers.LayerNormalization(dtype="float64") if kind == "layer"
            else keras.layers.BatchNormalization(dtype="float64"))
    return keras.Sequential([keras.Input((3,), dtype="float64"),
                             keras.layers.Dense(5, activation="tanh", dtype="float64"), norm,
                             keras.layers.Dense(1, dtype="float64")])


@pytest.mark.parametrize("kind", ["layer", "batch"])
def test_second_order_through_normalization_equals_finite_differences(kind):
    # tf.nn.moments stops the gradient through the mean inside the variance; MetaLearner
    # must still give the exact second-order meta-gradient.
    net = norm_net(kind)
    rng = np.random.default_rng(0)
    data = tuple((rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 1))) for _ in range(2))
    learner = kse.MetaLearner(net, "maml", inner_lr=0.5)
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    theta = [v.numpy().copy() for v in net.trainable_variables]
    grads = learner_gradients(learner, data)
    non_trainable = [v.numpy() for v in net.non_trainable_variables]

    def objective(weights):
        (sx, sy), (qx, qy) = data
        losses = []
        for t in range(2):
            def loss(w, x, y):
                pred = net.stateless_call(w, non_trainable, x, training=True)[0]
                centred = pred - y
                return tf.reduce_mean(tf.square(centred))
            fast = [tf.constant(w) for w in weights]
            with tf.GradientTape() as tape:
                tape.watch(fast)
                inner = loss(fast, sx[t], sy[t])
            fast = [w - 0.5 * g for w, g in zip(fast, tape.gradient(inner, fast))]
            losses.append(float(loss(fast, qx[t], qy[t])))
        return np.mean(losses)

    eps = 1e-6
    for _ in range(3):
        direction = [rng.normal(size=w.shape) for w in theta]
        numeric = (objective([w + eps * d for w, d in zip(theta, direction)])
                   - objective([w - eps * d for w, d in zip(theta, direction)])) / (2 * eps)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, direction))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_gru_net_second_order_runs_the_non_cudnn_graph_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 2)).astype("float32")
    y = rng.normal(size=(2, 6, 1)).astype("float32")
    data = ((x, y), (x, y))
    maml, maml_step, learner = _one_meta_step(gru_net, data, "mse")
    assert learner.vectorize is False and learner.model.layers[0].use_cudnn is False
    fomaml, fomaml_step, _ = _one_meta_step(gru_net, data, "mse", algorithm="fomaml")
    assert np.isfinite(maml) and max(np.abs(s).max() for s in maml_step) > 0
    assert max(np.abs(a - b).max() for a, b in zip(maml_step, fomaml_step)) > 1e-6


def test_reptile_reports_compiled_metrics():
    net = kse.zoo.build("conv4", num_classes=2, filters=4, seed=0)
    learner = kse.MetaLearner(net, "reptile", inner_lr=0.1, inner_steps=2,
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.compile(optimizer="sgd", metrics=["sparse_categorical_accuracy"])
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 4, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 2, (3, 4)).astype("int32")
    logs = learner.train_on_batch(((x, y), (x, y)), return_dict=True)
    assert set(logs) == {"loss", "sparse_categorical_accuracy"} and np.isfinite(logs["loss"])


@pytest.mark.parametrize("entry", ["fit", "train_on_batch"])
def test_the_meta_step_is_traced_once(entry):
    """The optimizer and the compiled metrics are built before the first trace: a trace
    that creates variables is traced again, which doubled a meta-step's first-step time."""
    learner = kse.MetaLearner(tiny_mlp(), "maml", inner_lr=0.1, inner_steps=2)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["mean_absolute_error"])
    traces = []
    step = learner.train_step
    learner.train_step = lambda data: (traces.append(1), step(data))[1]
    if entry == "fit":
        logs = learner.fit(kse.data.sinusoid_tasks(5, 5, 4, num_meta_batches=3), epochs=2,
                           verbose=0).history
    else:
        data = task_batch()
        # The prebuilt metric scores the post-adaptation query predictions.
        _, predictions = learner.task_predictions(data)
        expected = np.abs(data[1][1] - predictions.numpy()).mean()
        logs = learner.train_on_batch(data, return_dict=True)
        np.testing.assert_allclose(logs["mean_absolute_error"], expected, rtol=1e-5)
        logs = learner.train_on_batch(data, return_dict=True)
    assert set(logs) == {"loss", "mean_absolute_error"}
    assert len(traces) == 1


@pytest.mark.parametrize("algorithm, vectorize", [("maml", True), ("metasgd", True),
                                                  ("anil", True), ("maml", False)])
def test_jit_compile_step_equals_graph_step(algorithm, vectorize):
    data = task_batch(tasks=4)
    weights = []
    for jit in (False, True):
        learner = kse.MetaLearner(tiny_mlp(), algorithm, inner_lr=0.1, inner_steps=2,
                                  adapt_layers=["head"] if algorithm == "anil" else None,
                                  vectorize=vectorize)
        learner.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=jit)
        for _ in range(2):
            learner.train_on_batch(data)
        weights.append([v.numpy() for v in learner.trainable_variables])
    assert not np.allclose(weights[0][0], tiny_mlp().get_weights()[0])  # it trained
    for graph, xla in zip(*weights):
        np.testing.assert_allclose(xla, graph, atol=1e-5)


def _sinusoid_epochs():
    return kse.data.sinusoid_tasks(5, 5, 4, seed=3, num_meta_batches=3)


def test_backup_and_restore_resumes_an_interrupted_meta_training(tmp_path):
    def learner():
        model = kse.MetaLearner(tiny_mlp(seed=1), "metasgd", inner_lr=0.05)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        return model

    reference = learner()
    reference.fit(_sinusoid_epochs(), epochs=4, verbose=0)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        learner().fit(_sinusoid_epochs(), epochs=4, callbacks=[backup, Interrupt()], verbose=0)
    resumed = learner()
    history = resumed.fit(_sinusoid_epochs(), epochs=4, callbacks=[backup], verbose=0)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    for got, want in zip(resumed.trainable_variables, reference.trainable_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


_CONTINUE_IN_FRESH_PROCESS = """
import sys, numpy as np, keras, keras_selfevo as kse
loaded = keras.saving.load_model(sys.argv[1])
assert type(loaded) is kse.MetaLearner and loaded.algorithm == "metasgd", type(loaded)
before = [v.numpy() for v in loaded.trainable_variables]
loaded.fit(kse.data.sinusoid_tasks(5, 5, 4, seed=3, num_meta_batches=3), verbose=0)
np.savez(sys.argv[2], *before, *[v.numpy() for v in loaded.trainable_variables])
"""


def test_fresh_process_load_continues_fit_like_the_original(tmp_path):
    import subprocess
    import sys

    learner = kse.MetaLearner(tiny_mlp(seed=2), "metasgd", inner_lr=0.05)
    learner.compile(optimizer=keras.optimizers.Adam(1e-2))
    learner.fit(_sinusoid_epochs(), verbose=0)
    path, out = str(tmp_path / "learner.keras"), str(tmp_path / "after.npz")
    learner.save(path)
    before = [v.numpy() for v in learner.trainable_variables]
    learner.fit(_sinusoid_epochs(), verbose=0)  # the original continues in this process
    subprocess.run([sys.executable, "-c", _CONTINUE_IN_FRESH_PROCESS, path, out], check=True,
                   env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    with np.load(out) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    n = len(before)
    assert n == len(learner.inner_lrs) * 2  # model weights and Meta-SGD rates
    for loaded_before, original_before in zip(arrays[:n], before):
        np.testing.assert_array_equal(loaded_before, original_before)
    # Same weights, rates and Adam state, same data: the same update.
    for loaded_after, original_after, start in zip(arrays[n:], learner.trainable_variables,
                                                   before):
        assert not np.allclose(loaded_after, start)
        np.testing.assert_allclose(loaded_after, original_after.numpy(), atol=1e-6)


def _self_loss_objective(net, theta, data, inner_lr, weight):
    """One inner step then the query loss, the self-loss term written out by hand."""
    (sx, sy), (qx, qy) = data

    fixed = [tf.convert_to_tensor(v) for v in net.non_trainable_variables]

    def loss(weights, x, y):
        out, _ = net.stateless_call(weights, fixed, x)
        picked = tf.gather(out["policy"], y, batch_dims=1)
        targets, logits = x[:, 1:], out["self"]
        per_position = (tf.reduce_logsumexp(logits, -1)
                        - tf.gather(logits, targets, batch_dims=2))
        counted = tf.cast(targets != kse.data.text.PAD, tf.float32)
        return (tf.reduce_mean(-tf.math.log(picked))
                + weight * tf.reduce_sum(per_position * counted) / tf.reduce_sum(counted))

    total = 0.0
    for t in range(len(sx)):
        with tf.GradientTape() as tape:
            tape.watch(theta)
            inner = loss(theta, sx[t], sy[t])
        fast = [w - inner_lr * tf.convert_to_tensor(g)
                for w, g in zip(theta, tape.gradient(inner, theta))]
        total += loss(fast, qx[t], qy[t]) / len(sx)
    return total


def test_self_loss_weight_adds_the_masked_next_token_term_inside_and_outside():
    from keras_selfevo.zoo.text_classifier import text_classifier

    def tokens(rng, shape):
        ids = rng.integers(3, 7, shape).astype(np.int32)
        ids[..., 0] = kse.data.text.BOS
        ids[..., -2:] = np.where(rng.random(shape[:-1] + (2,)) < 0.5, kse.data.text.PAD,
                                 ids[..., -2:])
        return ids

    rng = np.random.default_rng(0)
    data = ((tokens(rng, (2, 3, 7)), rng.integers(0, 3, (2, 3)).astype(np.int32)),
            (tokens(rng, (2, 4, 7)), rng.integers(0, 3, (2, 4)).astype(np.int32)))
    classifier = text_classifier(vocabulary="()[]", num_classes=3, seed=0,
                                 body_args={"embed_dim": 4, "units": 6})
    learner = kse.MetaLearner(classifier, "maml", inner_lr=0.3, self_loss_weight=0.7)
    theta = [tf.convert_to_tensor(v) for v in classifier.trainable_variables]
    # The task loss against NumPy: the cross-entropy of the labels plus 0.7 × the mean
    # next-token cross-entropy over the positions that are not padding.
    (sx, sy), _ = data
    got, _ = learner.task_loss(theta, tf.constant(sx[0]), tf.constant(sy[0]))
    out = classifier(sx[0])
    probs, logits = out["policy"].numpy(), out["self"].numpy().astype(np.float64)
    targets = sx[0][:, 1:]
    per_position = -np.take_along_axis(log_softmax(logits), targets[..., None], -1)[..., 0]
    counted = targets != kse.data.text.PAD
    assert 0 < counted.sum() < counted.size
    want = (-np.log(probs[np.arange(3), sy[0]]).mean()
            + 0.7 * per_position[counted].sum() / counted.sum())
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # The meta-gradient through the inner step, against the hand-written objective.
    with tf.GradientTape() as tape:
        tape.watch(theta)
        objective = _self_loss_objective(classifier, theta, data, 0.3, 0.7)
    expected = tape.gradient(objective, theta)
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    for got, want in zip(learner_gradients(learner, data), expected):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-3, atol=1e-6)


def test_self_loss_weight_needs_a_model_with_next_token_logits():
    with pytest.raises(ValueError, match="`self_loss_weight` needs a model whose 'self'"):
        kse.MetaLearner(tiny_mlp(), "maml", self_loss_weight=0.5)
    with pytest.raises(ValueError, match="`self_loss_weight` must be"):
        kse.MetaLearner(tiny_mlp(), "maml", self_loss_weight=-1.0)


def test_metasgd_with_fixed_weights_learns_the_rates_alone():
    data = task_batch("float64")
    deltas = {}
    for train_weights in (True, False):
        net = tiny_mlp("float64")
        learner = kse.MetaLearner(net, "metasgd", inner_lr=0.1, inner_steps=2,
                                  train_weights=train_weights)
        learner.compile(optimizer=keras.optimizers.SGD(1.0))
        weights = [v.numpy().copy() for v in net.trainable_variables]
        rates = [r.numpy().copy() for r in learner.inner_lrs]
        learner.train_on_batch(data)
        deltas[train_weights] = [r.numpy() - before for r, before in zip(learner.inner_lrs,
                                                                            rates)]
        moved = max(np.abs(v.numpy() - w).max() for v, w in zip(net.trainable_variables,
                                                               weights))
        assert (moved > 1e-6) == train_weights
    # The rates take the same meta-gradient step (checked against finite differences above).
    for fixed, free in zip(deltas[False], deltas[True]):
        assert np.abs(free).max() > 1e-6
        np.testing.assert_allclose(fixed, free, rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="`train_weights`=False leaves nothing"):
        kse.MetaLearner(tiny_mlp(), "maml", train_weights=False)
