import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo import testing

IMAGES = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
TOKENS = np.random.default_rng(0).integers(0, 7, size=(2, 9)).astype(np.int32)
CASES = {
    "mnist_cnn": ({"num_classes": 10}, IMAGES,
                  {"self": (2, 28, 28, 1), "policy": (2, 10), "mask": (2, 28, 28, 1)}),
    "conv4": ({"num_classes": 5}, IMAGES, (2, 5)),
    "char_rnn": ({"vocabulary": "()[]"}, TOKENS, {"self": (2, 9, 7), "policy": (2, 9, 7)}),
    "sinusoid_mlp": ({}, np.linspace(-5, 5, 4, dtype=np.float32)[:, None], (4, 1)),
    "gpt": ({"vocabulary": "()[]", "num_layers": 1, "num_heads": 2, "width": 8, "block_size": 16},
            TOKENS, {"self": (2, 9, 7), "policy": (2, 9, 7)}),
    "hub_gpt2": ({"vocabulary": "()[]", "num_layers": 1, "num_heads": 2, "hidden_dim": 8,
                  "intermediate_dim": 16, "max_sequence_length": 16},
                 TOKENS, {"self": (2, 9, 7), "policy": (2, 9, 7)}),
    "tabular": ({"numeric": ["a", "b"], "means": [0.0, 1.0], "variances": [1.0, 4.0],
                 "categorical": {"colour": ["red", "blue"]}, "num_classes": 3, "units": [8]},
                {"a": np.array([[0.5], [1.0]], np.float32),
                 "b": np.array([[2.0], [-1.0]], np.float32),
                 "colour": np.array([["red"], ["green"]], object)},
                {"self": (2, 5), "self_target": (2, 5), "mask": (2, 5), "policy": (2, 3)}),
    "text_classifier": ({"vocabulary": "()[]", "num_classes": 3,
                         "body_args": {"embed_dim": 4, "units": 6}}, TOKENS,
                        {"self": (2, 8, 7), "self_target": (2, 8), "policy": (2, 3)}),
}


def test_names():
    assert kse.zoo.names() == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_model_passes_the_saving_helper(name):
    kwargs, inputs, shape = CASES[name]
    model = kse.zoo.build(name, seed=0, **kwargs)
    # The fresh-process reload is the next test's, all models in one process; XLA takes no
    # string input (a table's categories).
    testing.run_model_saving_test(model, inputs, expected_output_shape=shape,
                                  fresh_process=False, run_jit_compile=name != "tabular")


def test_every_model_reloads_in_one_fresh_process():
    # gpt's fresh-process reload is tests/zoo/test_gpt.py's (with dropout, to 1e-6).
    testing.run_fresh_reload_test(
        [(kse.zoo.build(name, seed=0, **CASES[name][0]), CASES[name][1])
         for name in sorted(CASES) if name != "gpt"])


def test_conv4_strided_form_matches_maml_omniglot():
    net = kse.zoo.build("conv4", downsample="stride", seed=0)
    shapes = [layer.output.shape[1:] for layer in net.layers[:4]]
    assert shapes == [(14, 14, 64), (7, 7, 64), (4, 4, 64), (2, 2, 64)]
    # The features are the mean of the last map, as in MAML's Omniglot network.
    x = IMAGES
    features = keras.Model(net.inputs, net.layers[3].output)(x, training=False)
    expected = net.get_layer("logits")(np.mean(features, axis=(1, 2)))
    np.testing.assert_allclose(net(x, training=False), expected, atol=1e-5)
    testing.run_model_saving_test(net, x, expected_output_shape=(2, 5), fresh_process=False)
    with pytest.raises(ValueError, match="`downsample` must be one of"):
        kse.zoo.build("conv4", downsample="avg")


def test_builders_are_seeded_and_checked():
    a = kse.zoo.build("conv4", seed=3).get_weights()
    b = kse.zoo.build("conv4", seed=3).get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="Unknown zoo model `name`='resnet'"):
        kse.zoo.build("resnet")
    with pytest.raises(ValueError, match="Unknown argument\\(s\\) \\['classes'\\]"):
        kse.zoo.build("conv4", classes=5)


def test_mnist_cnn_mirrored_step_equals_default(one_and_two_replicas):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    y = {"policy": np.eye(10, dtype=np.float32)[labels], "reward": np.ones(8, np.float32)}
    initial = kse.zoo.build("mnist_cnn", mask_rate=0.0, seed=0).get_weights()

    def step(strategy):
        with strategy.scope():
            # Masking is random per replica; a rate of 0 keeps the step comparable.
            model = kse.zoo.build("mnist_cnn", mask_rate=0.0, seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.5)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return model.get_weights()

    weights = one_and_two_replicas(step)
    assert max(np.abs(a - b).max() for a, b in zip(weights[0], initial)) > 1e-4
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("decoder", ["conv", "dense"])
def test_mnist_cnn_clean_policy_input_ignores_the_mask_and_the_self_head_does_not(decoder):
    model = kse.zoo.build("mnist_cnn", num_classes=4, decoder=decoder, policy_input="clean",
                          filters=4, units=8, seed=0)
    first, second = model(IMAGES, training=True), model(IMAGES, training=True)
    # Two different masks: the self head sees them, the policy reads the image itself.
    assert not np.array_equal(first["mask"], second["mask"])
    assert not np.allclose(first["self"], second["self"])
    np.testing.assert_allclose(first["policy"], second["policy"], rtol=1e-6)
    np.testing.assert_allclose(first["policy"], model(IMAGES, training=False)["policy"],
                               rtol=1e-6)
    masked = kse.zoo.build("mnist_cnn", num_classes=4, decoder=decoder, filters=4, units=8,
                           seed=0)
    # The same weights, with the policy on the masked image: it does depend on the mask.
    masked.set_weights(model.get_weights())
    assert not np.allclose(masked(IMAGES, training=True)["policy"],
                           masked(IMAGES, training=True)["policy"])
    assert model.get_layer("self").output.shape[1:] == (28, 28, 1)


@pytest.mark.parametrize("decoder", ["conv", "dense"])
def test_mnist_cnn_detached_self_head_trains_the_head_alone(decoder):
    import tensorflow as tf

    kwargs = {"num_classes": 4, "decoder": decoder, "policy_input": "clean", "filters": 4,
              "units": 8, "mask_rate": 0.0}
    shared = kse.zoo.build("mnist_cnn", **kwargs, seed=0)
    head = kse.zoo.build("mnist_cnn", **kwargs, self_gradient="head", seed=0)
    head.set_weights(shared.get_weights())
    gradients = {}
    for name, model in (("shared", shared), ("head", head)):
        with tf.GradientTape() as tape:
            outputs = model(IMAGES, training=True)
            loss = tf.reduce_mean(tf.square(outputs["self"] - IMAGES))
        # The forward pass is the same; only the self-loss's gradient path differs.
        np.testing.assert_allclose(outputs["self"], shared(IMAGES, training=True)["self"],
                                   rtol=1e-6)
        gradients[name] = {v.path: g for v, g in zip(
            model.trainable_weights, tape.gradient(loss, model.trainable_weights))}
    below = [path for path in gradients["shared"] if path.startswith(
        ("conv/",) if decoder == "conv" else ("conv/", "hidden/"))]
    heads = [path for path in gradients["shared"] if path.startswith(("self/",
                                                                       "reconstruction/"))]
    assert below and heads
    for path in below:
        assert np.abs(gradients["shared"][path]).max() > 0
        assert gradients["head"][path] is None or not np.any(gradients["head"][path])
    for path in heads:
        np.testing.assert_allclose(gradients["head"][path], gradients["shared"][path],
                                   rtol=1e-5, atol=1e-7)
    testing.run_model_saving_test(head, IMAGES, fresh_process=False)


def test_mnist_cnn_bad_decoder_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="`decoder` must be one of"):
        kse.zoo.build("mnist_cnn", decoder="deconv")
    with pytest.raises(ValueError, match="`policy_input` must be one of"):
        kse.zoo.build("mnist_cnn", policy_input="unmasked")
    with pytest.raises(ValueError, match="`self_gradient` must be one of"):
        kse.zoo.build("mnist_cnn", self_gradient="none")
    with pytest.raises(ValueError, match="`vocabulary` must be a non-empty string"):
        kse.zoo.build("gpt", vocabulary=list("ab"))


@pytest.mark.parametrize("confidence", [None, 0.7])
def test_mnist_cnn_consistency_head_is_the_classifier_on_a_perturbed_view(confidence):
    model = kse.zoo.build("mnist_cnn", num_classes=4, self_task="consistency", filters=4,
                          units=8, confidence=confidence, seed=0)
    outputs = model(IMAGES, training=False)
    if confidence is not None:
        # An untrained model is confident about nothing at 0.7: a threshold between its two
        # images' top probabilities makes one row confident and the other not.
        top = np.sort(outputs["policy"].numpy().max(axis=-1))
        confidence = float(top.mean())
        model.get_layer("pseudo_label").threshold = confidence
    # Outside training the view is the image: both heads are the same classifier.
    np.testing.assert_allclose(outputs["self"], outputs["policy"], rtol=1e-6)
    trained = model(IMAGES, training=True)
    assert not np.allclose(trained["self"], trained["policy"])
    np.testing.assert_allclose(trained["policy"], outputs["policy"], rtol=1e-6)
    if confidence is None:
        np.testing.assert_allclose(trained["self_target"], trained["policy"], rtol=1e-6)
        assert "mask" not in trained
    else:
        confident = outputs["policy"].numpy().max(axis=-1) >= confidence
        assert confident.tolist().count(True) == 1
        np.testing.assert_array_equal(trained["mask"][:, 0], confident.astype(np.float32))
        np.testing.assert_array_equal(np.argmax(trained["self_target"], axis=-1),
                                      np.argmax(outputs["policy"], axis=-1))
    shapes = {key: (2, 4) for key in outputs}
    testing.run_model_saving_test(model, IMAGES, expected_output_shape=shapes,
                                  fresh_process=False)


def test_mnist_cnn_bad_consistency_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="`self_task` must be one of"):
        kse.zoo.build("mnist_cnn", self_task="rotate")
    with pytest.raises(ValueError, match="`shift` must be a float in"):
        kse.zoo.build("mnist_cnn", self_task="consistency", shift=1.5)
    with pytest.raises(ValueError, match="`rotation` must be a float in"):
        kse.zoo.build("mnist_cnn", self_task="consistency", rotation=-0.1)
    with pytest.raises(ValueError, match="`confidence` must be None or a float in \\(0, 1\\]"):
        kse.zoo.build("mnist_cnn", self_task="consistency", confidence=2.0)


@pytest.mark.parametrize("body, body_args", [
    ("char_rnn", {"embed_dim": 4, "units": 6}),
    ("gpt", {"num_layers": 1, "num_heads": 2, "width": 8, "block_size": 4}),
])
def test_text_classifier_features_are_the_mean_state_its_head_reads(body, body_args):
    model = kse.zoo.build("text_classifier", vocabulary="()[]", num_classes=3, body=body,
                          body_args=body_args, seed=0)
    tokens = TOKENS.copy()
    tokens[:, 0], tokens[0, -3:] = kse.data.text.BOS, kse.data.text.PAD
    features = model.features(tokens).numpy()
    # By hand: the body's states over the characters (<bos> included, padding not), read in
    # windows of the block size for a gpt, then averaged.
    inputs = tokens[:, :-1]
    block = model.language_model.context_window or inputs.shape[1]
    states = np.concatenate([model.language_model.features(inputs[:, i:i + block]).numpy()
                             for i in range(0, inputs.shape[1], block)], axis=1)
    counted = (inputs != kse.data.text.PAD)[..., None]
    want = (states * counted).sum(1) / counted.sum(1)
    np.testing.assert_allclose(features, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(tokens)["policy"].numpy(), model.head(features).numpy(),
                               rtol=1e-6)
    assert model.meta_task()[0] == "policy"
