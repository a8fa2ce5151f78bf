import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo import layers, testing


def _pair(**kwargs):
    """A FusedBatchNormalization and a Keras BatchNormalization with the same weights."""
    fused = layers.FusedBatchNormalization(momentum=0.9, **kwargs)
    plain = keras.layers.BatchNormalization(momentum=0.9, **kwargs)
    return fused, plain


def test_layer_helper_checks():
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    testing.run_layer_test(layers.FusedBatchNormalization, {"momentum": 0.5}, x,
                           expected_output_shape=(2, 5, 5, 3), expected_num_trainable_weights=2,
                           fresh_process=False)  # fresh: test_fresh_reload.py


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False}])
def test_training_steps_equal_keras_batch_normalization(kwargs):
    """Outputs, the input and weight gradients, and the moving statistics after three
    training calls, then inference, all equal the Keras layer's."""
    rng = np.random.default_rng(0)
    fused, plain = _pair(**kwargs)
    shape = (6, 5, 4, 3)
    fused.build(shape)
    plain.build(shape)
    fused.set_weights([w + rng.normal(size=w.shape).astype("float32") * 0.1
                       for w in fused.get_weights()])
    plain.set_weights(fused.get_weights())
    for _ in range(3):
        x = tf.constant(rng.normal(2.0, 3.0, size=shape).astype(np.float32))
        w = tf.constant(rng.normal(size=shape).astype(np.float32))
        results = []
        for layer in (fused, plain):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.sin(y) * w)
            results.append([y, *tape.gradient(loss, [x, *layer.trainable_variables])])
        for a, b in zip(*results):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(fused.non_trainable_variables, plain.non_trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused(x, training=False).numpy(),
                               plain(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["float64", "channels_first", "rank3", "small_epsilon"])
def test_unfusable_calls_run_the_keras_code(case):
    """float64, another axis, another rank or an epsilon below the kernel's minimum: the
    Keras layer's own computation, to float64 (or float32) round-off."""
    rng = np.random.default_rng(1)
    kwargs, shape, dtype = {}, (4, 3, 3, 2), "float32"
    if case == "float64":
        dtype = "float64"
    elif case == "channels_first":
        kwargs = {"axis": 1}
    elif case == "rank3":
        shape = (4, 3, 2)
    else:
        kwargs = {"epsilon": 1e-6}
    fused, plain = _pair(dtype=dtype, **kwargs)
    x = rng.normal(size=shape).astype(dtype)
    assert not fused._fusable(tf.constant(x), None)
    np.testing.assert_allclose(fused(x, training=True).numpy(), plain(x, training=True).numpy(),
                               rtol=1e-12 if dtype == "float64" else 1e-6)


def _meta_gradient(dtype: str, norm) -> list[np.ndarray]:
    """One second-order MAML meta-gradient of a conv + batch-norm net, read off SGD(1)."""
    net = keras.Sequential([
        keras.Input((6, 6, 2), dtype=dtype),
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False, dtype=dtype),
        norm(dtype=dtype), keras.layers.ReLU(dtype=dtype),
        keras.layers.MaxPooling2D(2, dtype=dtype),
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False, dtype=dtype),
        norm(dtype=dtype), keras.layers.ReLU(dtype=dtype),
        keras.layers.Flatten(dtype=dtype), keras.layers.Dense(3, dtype=dtype)])
    rng = np.random.default_rng(2)
    net.set_weights([rng.normal(size=w.shape).astype(dtype) * 0.5 + (w == 1)
                     for w in net.get_weights()])
    sx, qx = (rng.normal(size=(3, n, 6, 6, 2)).astype(dtype) for n in (6, 9))
    sy, qy = (np.eye(3, dtype=dtype)[rng.integers(0, 3, (3, n))] for n in (6, 9))
    learner = kse.MetaLearner(net, "maml", inner_lr=0.1, inner_steps=2,
                              loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    learner.compile(optimizer=keras.optimizers.SGD(1.0))
    before = [v.numpy().copy() for v in learner.trainable_variables]
    learner.train_on_batch(((sx, sy), (qx, qy)))
    return [b - v.numpy() for b, v in zip(before, learner.trainable_variables)]


def test_second_order_meta_gradient_equals_the_exact_float64_one():
    """MAML's meta-gradient (two inner steps, second order) through the fused kernels, in
    float32, against Keras's layer in float64, whose second-order terms MetaLearner keeps
    exact (tests/meta checks those against finite differences)."""
    fused = _meta_gradient("float32", layers.FusedBatchNormalization)
    exact = _meta_gradient("float64", keras.layers.BatchNormalization)
    assert max(np.abs(g).max() for g in exact) > 1e-2
    for a, b in zip(fused, exact):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
