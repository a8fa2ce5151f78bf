import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_selfevo import layers, testing

TOKENS = np.random.default_rng(0).integers(0, 9, size=(3, 7)).astype(np.int32)


@pytest.mark.parametrize("cell, weights", [("gru", 1 + 2 * 3), ("lstm", 1 + 2 * 3),
                                           ("simple_rnn", 1 + 2 * 3)])
def test_layer_helper_checks(cell, weights):
    testing.run_layer_test(
        layers.RecurrentBlock,
        {"vocab_size": 9, "embed_dim": 4, "units": 5, "num_layers": 2, "cell": cell},
        TOKENS, expected_output_shape=(3, 7, 5), expected_num_trainable_weights=weights,
        fresh_process=False,  # fresh (gru): test_fresh_reload.py
    )


def test_matches_the_plain_layer_stack_and_takes_initial_state():
    block = layers.RecurrentBlock(9, 4, 5, num_layers=2, cell="lstm")
    out = block(TOKENS).numpy()
    h = block.embedding(TOKENS)
    for layer in block.recurrent_layers:
        h = layer(h)
    np.testing.assert_allclose(out, h.numpy(), atol=1e-6)
    states = [[np.ones((3, 5), np.float32), np.zeros((3, 5), np.float32)]] * 2
    assert not np.allclose(block(TOKENS, initial_state=states).numpy(), out)
    with pytest.raises(ValueError, match="one state per layer"):
        block(TOKENS, initial_state=states[:1])


def test_causal_dropout_and_cudnn_switch():
    block = layers.RecurrentBlock(9, 4, 5, dropout=0.5, use_cudnn=False)
    assert block.recurrent_layers[0].use_cudnn is False
    out = block(TOKENS).numpy()
    changed = TOKENS.copy()
    changed[:, -1] = (changed[:, -1] + 1) % 9
    np.testing.assert_allclose(block(changed).numpy()[:, :-1], out[:, :-1], atol=1e-6)
    assert not np.allclose(block(TOKENS, training=True).numpy(), out)


@pytest.mark.parametrize("kwargs, message", [
    ({"cell": "transformer"}, "`cell` must be one of"),
    ({"units": 0}, "`units` must be a positive integer"),
    ({"dropout": 1.0}, "`dropout` must be a float in"),
    ({"unroll": "always"}, "`unroll` must be one of"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.RecurrentBlock(**{"vocab_size": 9, "embed_dim": 4, "units": 5, **kwargs})


def test_mixed_precision_outputs_float16():
    block = layers.RecurrentBlock(9, 4, 5, dtype="mixed_float16")
    assert block(TOKENS).dtype == "float16"
    assert keras.ops.convert_to_numpy(block.embedding.embeddings).dtype == np.float32


def _loops(block, steps):
    """Whether the block's traced call on ``[batch, steps]`` holds a While loop."""
    function = tf.function(lambda tokens: block(tokens))
    graph = function.get_concrete_function(tf.TensorSpec([None, steps], tf.int32)).graph
    return any(op.type in ("While", "StatelessWhile") for op in graph.get_operations())


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple_rnn"])
def test_unrolled_and_looped_calls_compute_the_same_values_and_gradients(cell):
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 9, size=(3, 12)).astype(np.int32)
    looped = layers.RecurrentBlock(9, 4, 5, num_layers=2, cell=cell, unroll=False)
    unrolled = layers.RecurrentBlock(9, 4, 5, num_layers=2, cell=cell, unroll=True)
    looped.build((None, None))
    unrolled.build((None, None))
    unrolled.set_weights(looped.get_weights())
    results = []
    for block in (looped, unrolled):
        with tf.GradientTape() as tape:
            out = block(tokens)
            loss = tf.reduce_sum(tf.sin(out))
        results.append((out.numpy(), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(
            loss, block.trainable_weights)]))
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-6)
    for a, b in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert _loops(looped, 12) and not _loops(unrolled, 12)


def test_auto_unrolls_short_known_lengths_only():
    block = layers.RecurrentBlock(9, 4, 5)
    assert block.unroll == "auto"
    assert not _loops(block, layers.recurrent_block.UNROLL_MAX_STEPS)
    assert _loops(block, layers.recurrent_block.UNROLL_MAX_STEPS + 1)
    assert _loops(block, None)
    with pytest.raises(ValueError, match="`unroll=True` needs a time dimension"):
        _loops(layers.RecurrentBlock(9, 4, 5, unroll=True), None)
    config = layers.RecurrentBlock(9, 4, 5, unroll=False).get_config()
    assert layers.RecurrentBlock.from_config(config).unroll is False
