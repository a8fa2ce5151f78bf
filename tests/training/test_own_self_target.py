"""A model's own ``"self_target"`` output as the self target (consistency self-losses)."""

import keras
import numpy as np
import tensorflow as tf

import keras_selfevo as kse
from tests.training.helpers import make_batch


def _two_heads(seed: int = 0, mask: bool = False) -> kse.SelfEvolvingModel:
    """x → Dense 8 → {"self": Dense 4 "a", "self_target": Dense 4 "b"} (+ a mask on "b")."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    outputs = {"self": keras.layers.Dense(4, activation="sigmoid", name="a")(hidden)}
    target = keras.layers.Dense(4, activation="softmax", name="b")(hidden)
    if mask:
        labels = kse.layers.PseudoLabel(0.3, name="pseudo_label")
        outputs["self_target"], outputs["mask"] = labels(target)
    else:
        outputs["self_target"] = target
    return kse.SelfEvolvingModel(inputs, outputs)


def test_the_self_target_output_is_a_constant_target():
    model = _two_heads()
    x, _ = make_batch()
    before = [w.numpy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = keras.losses.BinaryCrossentropy()(tf.stop_gradient(out["self_target"]),
                                                 out["self"])
    grads = tape.gradient(loss, model.trainable_weights)
    model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=1.0)
    logs = model.train_on_batch(x, None, return_dict=True)
    np.testing.assert_allclose(logs["self_loss"], float(loss), rtol=1e-5)
    for w0, g, w1 in zip(before, grads, model.trainable_weights):
        np.testing.assert_allclose(w1.numpy(), w0 - 0.5 * (0 if g is None else g.numpy()),
                                   atol=1e-6)
    # No gradient flows into the target: its head "b" did not move.
    for w0, w1 in zip(before, model.trainable_weights):
        if "b/" in w1.path:
            np.testing.assert_array_equal(w0, w1.numpy())


def test_an_explicit_self_target_wins_over_the_output():
    model = _two_heads()
    x, _ = make_batch()
    target = np.random.default_rng(1).uniform(size=(len(x), 4)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.SGD(0.0), alpha=1.0)
    logs = model.test_on_batch(x, {"self": target}, return_dict=True)
    expected = keras.losses.BinaryCrossentropy()(target, model(x)["self"])
    np.testing.assert_allclose(logs["self_loss"], float(expected), rtol=1e-5)


def test_pseudo_labels_count_the_confident_rows_and_none_means_no_self_loss():
    model = _two_heads(mask=True)
    x, _ = make_batch()
    # Half the rows confident: the threshold at the median of the largest probabilities.
    scores = keras.Model(model.inputs[0], model.get_layer("b").output)(x).numpy()
    model.get_layer("pseudo_label").threshold = float(np.median(scores.max(axis=-1)))
    out = model(x, training=True)
    p = out["self_target"].numpy()
    model.compile(optimizer=keras.optimizers.SGD(0.0), alpha=1.0, masked_self_loss=True)
    logs = model.train_on_batch(x, None, return_dict=True)
    m = out["mask"].numpy()
    assert 0 < m[:, 0].sum() < len(x)  # some rows confident, some not
    bce = keras.ops.binary_crossentropy(p, out["self"]).numpy()  # per element
    np.testing.assert_allclose(logs["self_loss"], (bce * m).sum() / m.sum(), rtol=1e-5)
    # A threshold no prediction reaches: nothing to learn from, no self-loss, no update.
    model.get_layer("pseudo_label").threshold = 1.0
    model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=1.0, masked_self_loss=True)
    before = [w.numpy() for w in model.trainable_weights]
    logs = model.train_on_batch(x, None, return_dict=True)
    assert logs["self_loss"] == 0.0
    for w0, w1 in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(w0, w1.numpy())



def test_two_replicas_equal_one_device(one_and_two_replicas):
    """The pseudo-label loss is a mean over the global batch's confident rows."""
    from tests.training.test_self_evolving_distributed import one_step, skewed_batch

    x, _, sample_weight = skewed_batch()
    build = lambda: _two_heads(mask=True)  # noqa: E731
    confident = build()(x)["mask"].numpy()[:, 0]
    assert confident[:8].sum() != confident[8:].sum()  # the replicas' counts differ
    settings = dict(alpha=1.0, masked_self_loss=True)
    initial = build().get_weights()
    (single, single_logs), (replicated, replicated_logs) = one_and_two_replicas(
        lambda strategy: one_step(build, strategy, settings, x, None, sample_weight,
                                  init=initial))
    assert max(np.abs(a - b).max() for a, b in zip(single.get_weights(), initial)) > 1e-4
    for a, b in zip(single.get_weights(), replicated.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(single_logs["self_loss"], replicated_logs["self_loss"],
                               rtol=1e-5)
