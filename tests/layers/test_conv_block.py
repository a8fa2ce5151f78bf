import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo import layers, testing


def test_layer_helper_checks():
    x = np.random.default_rng(0).uniform(size=(2, 12, 12, 3)).astype(np.float32)
    testing.run_layer_test(layers.ConvBlock, {"filters": 4}, x,
                           expected_output_shape=(2, 6, 6, 4), expected_num_trainable_weights=3,
                           fresh_process=False)  # fresh: test_fresh_reload.py
    testing.run_layer_test(layers.ConvBlock, {"filters": 4, "pool": False, "normalization": None},
                           x, expected_output_shape=(2, 12, 12, 4),
                           expected_num_trainable_weights=2, fresh_process=False)
    testing.run_layer_test(layers.ConvBlock, {"filters": 4, "pool": False, "strides": 2}, x,
                           expected_output_shape=(2, 6, 6, 4), expected_num_trainable_weights=3,
                           fresh_process=False)


def test_matches_the_plain_layer_stack():
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 2)).astype(np.float32)
    block = layers.ConvBlock(5, kernel_size=3)
    out = block(x, training=True).numpy()
    conv = tf.nn.conv2d(x, block.conv.kernel.numpy(), 1, "SAME")
    mean, var = tf.nn.moments(conv, axes=[0, 1, 2])
    normed = (conv - mean) / tf.sqrt(var + block.norm.epsilon)
    normed = normed * block.norm.gamma.numpy() + block.norm.beta.numpy()
    expected = tf.nn.max_pool2d(tf.nn.relu(normed), 2, 2, "VALID").numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_strided_block_matches_the_plain_layer_stack():
    x = np.random.default_rng(2).normal(size=(3, 7, 7, 2)).astype(np.float32)
    block = layers.ConvBlock(4, pool=False, strides=2, normalization=None)
    out = block(x).numpy()
    conv = tf.nn.conv2d(x, block.conv.kernel.numpy(), 2, "SAME") + block.conv.bias.numpy()
    assert out.shape == (3, 4, 4, 4)
    np.testing.assert_allclose(out, tf.nn.relu(conv).numpy(), atol=1e-5)


def test_runs_in_stateless_call_and_mixed_precision():
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.ConvBlock(3)])
    x = np.ones((2, 8, 8, 1), np.float32)
    doubled = [v * 2 for v in model.trainable_variables]
    non_trainable = list(model.non_trainable_variables)
    out, _ = model.stateless_call(doubled, non_trainable, x, training=True)
    assert out.shape == (2, 4, 4, 3)
    half = layers.ConvBlock(3, dtype="mixed_float16")
    assert half(x).dtype == "float16" and half.conv.kernel.dtype == "float32"


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": 0}, "`filters` must be a positive integer"),
    ({"filters": 4, "normalization": "layer"}, "`normalization` must be one of"),
    ({"filters": 4, "strides": 0}, "`strides` must be a positive integer"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.ConvBlock(**kwargs)


def test_meta_learner_adapts_a_conv_block_net():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((8, 8, 1)), layers.ConvBlock(4), keras.layers.Flatten(),
                            keras.layers.Dense(2)])
    learner = kse.MetaLearner(net, inner_lr=0.5,
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
    y = np.array([0, 1, 0, 1, 0, 1], np.int32)
    before = [w.copy() for w in net.get_weights()]
    adapted = learner.adapt(x, y, steps=3)
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Batch statistics, as in the inner loop (this updates moving statistics: after the check).
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert float(loss(y, adapted(x, training=True))) < float(loss(y, net(x, training=True)))
