import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from tests.references import numpy_weights
from tests.training.helpers import build_tiny_model, make_batch

WEIGHTINGS = ["raw", "normalized", "awr", "filter"]


def reference_gradients(model, x, y, alpha, weighting, sample_weight=None):
    """Gradients of the objective written out directly with Keras losses and NumPy weights."""
    rewards = y["reward"] if weighting != "raw" else np.abs(y["reward"])
    weights = numpy_weights(weighting, rewards)
    sw = np.ones(len(x), np.float32) if sample_weight is None else sample_weight
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        self_out, policy_out = (out["self"], out["policy"]) if isinstance(out, dict) else (out, out)
        self_target = y.get("self", x)
        l_self = keras.losses.BinaryCrossentropy()(self_target, self_out, sample_weight=sw)
        scale = y["action"] if "action" in y else 1.0
        se = tf.reduce_mean(tf.square(y["policy"] - scale * policy_out), axis=-1)
        l_reinforce = tf.reduce_mean(weights * se * sw)
        total = alpha * l_self + (1 - alpha) * l_reinforce
    return tape.gradient(total, model.trainable_weights), float(l_self), float(l_reinforce)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("variant", ["input_target", "explicit_target_action_sample_weight"])
def test_one_sgd_step_equals_the_formula(weighting, variant):
    model = build_tiny_model()
    explicit = variant != "input_target"
    x, y = make_batch(actions=explicit, self_target=explicit)
    if weighting == "raw":
        y["reward"] = np.abs(y["reward"])
    sample_weight = np.linspace(0.5, 1.5, len(x)).astype(np.float32) if explicit else None
    alpha, lr = 0.3, 0.5
    before = [w.numpy() for w in model.trainable_weights]
    grads, l_self, l_reinforce = reference_gradients(model, x, y, alpha, weighting, sample_weight)
    model.compile(optimizer=keras.optimizers.SGD(lr), alpha=alpha, reward_weighting=weighting)
    logs = model.train_on_batch(x, y, sample_weight=sample_weight, return_dict=True)
    for w0, g, w1 in zip(before, grads, model.trainable_weights):
        np.testing.assert_allclose(w1.numpy(), w0 - lr * g.numpy(), atol=1e-6)
    np.testing.assert_allclose(logs["self_loss"], l_self, rtol=1e-5)
    np.testing.assert_allclose(logs["reinforce_loss"], l_reinforce, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], alpha * l_self + (1 - alpha) * l_reinforce, rtol=1e-5)
    assert logs["alpha"] == pytest.approx(alpha)


@pytest.mark.parametrize("entry", ["fit", "train_on_batch"])
def test_the_train_step_is_traced_once(entry):
    """The optimizer and compiled metrics are built before the first trace (a trace that
    creates variables is traced again)."""
    model = build_tiny_model()
    x, y = make_batch()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), alpha=0.5, reward_weighting="normalized",
                  metrics={"policy": ["mean_absolute_error"]})
    traces = []
    step = model.train_step
    model.train_step = lambda data: (traces.append(1), step(data))[1]
    if entry == "fit":
        logs = model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(2), epochs=2,
                         verbose=0).history
        logs = {key: values[-1] for key, values in logs.items()}
    else:
        for _ in range(2):
            logs = model.train_on_batch(x, y, return_dict=True)
    assert len(traces) == 1
    assert any("mean_absolute_error" in key for key in logs), logs
    assert all(np.isfinite(value) for value in logs.values())


def test_single_output_serves_both_terms():
    model = build_tiny_model(single_output=True)
    x, y = make_batch()
    y["policy"] = np.random.default_rng(3).uniform(size=x.shape).astype(np.float32)
    before = [w.numpy() for w in model.trainable_weights]
    grads, *_ = reference_gradients(model, x, y, 0.6, "awr")
    model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.6, reward_weighting="awr")
    model.train_on_batch(x, y)
    for w0, g, w1 in zip(before, grads, model.trainable_weights):
        np.testing.assert_allclose(w1.numpy(), w0 - 0.5 * g.numpy(), atol=1e-6)


def test_alpha_one_needs_no_policy_targets_and_matches_plain_bce(tiny_model):
    x, _ = make_batch()
    tiny_model.compile(optimizer="sgd", alpha=1.0)
    logs = tiny_model.fit(x, None, epochs=1, batch_size=16, verbose=0).history
    assert logs["reinforce_loss"] == [0.0]
    np.testing.assert_allclose(logs["loss"], logs["self_loss"], rtol=1e-6)


def test_masked_self_loss_counts_masked_elements_only():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    corrupted, mask = kse.layers.RandomMasking(rate=0.5, seed=1)(inputs)
    hidden = keras.layers.Dense(8, activation="tanh")(corrupted)
    recon = keras.layers.Dense(6, activation="sigmoid")(hidden)
    model = kse.SelfEvolvingModel(inputs, {"self": recon, "mask": mask})
    model.compile(optimizer=keras.optimizers.SGD(0.0), alpha=1.0, masked_self_loss=True)
    x, _ = make_batch()
    generator = model.layers[1].seed_generator
    state = generator.state.numpy()
    logs = model.train_on_batch(x, None, return_dict=True)
    generator.state.assign(state)  # replay the step's mask
    out = model(x, training=True)
    bce = keras.ops.binary_crossentropy(x, out["self"]).numpy()
    m = out["mask"].numpy()
    np.testing.assert_allclose(logs["self_loss"], (bce * m).sum() / m.sum(), rtol=1e-5)
    # Evaluation has no mask: every element counts.
    evaluated = model.evaluate(x, None, verbose=0, return_dict=True)
    out = model(x, training=False)
    np.testing.assert_allclose(
        evaluated["self_loss"], keras.losses.BinaryCrossentropy()(x, out["self"]), rtol=1e-5)


def test_alpha_schedule_is_logged_and_saved(tiny_model, tmp_path):
    x, y = make_batch(n=64)
    schedule = kse.training.LinearAlpha(1.0, 0.0, steps=4)
    tiny_model.compile(optimizer="sgd", alpha=schedule, reward_weighting="awr")
    history = tiny_model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    # Steps 0..3 then 4..7: alpha 1, .75, .5, .25 then 0 four times.
    np.testing.assert_allclose(history["alpha"], [0.625, 0.0], atol=1e-6)
    path = str(tmp_path / "m.keras")
    tiny_model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.alpha, kse.training.LinearAlpha)
    assert loaded.alpha.get_config() == schedule.get_config()


def test_fit_evaluate_predict_with_validation_and_callbacks(tiny_model, tmp_path):
    x, y = make_batch(n=64)
    y["reward"] = np.abs(y["reward"])
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[:32], {k: v[:32] for k, v in y.items()})).batch(16)
    tiny_model.compile(optimizer="adam", alpha=0.5, reward_weighting="raw", metrics=["mae"])
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.keras")),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0),
        keras.callbacks.TensorBoard(str(tmp_path / "tb")),
    ]
    history = tiny_model.fit(train, validation_data=val, epochs=5, callbacks=callbacks, verbose=0)
    # EarlyStopping: no improvement of 10 is possible, so training stops after epoch 2.
    assert len(history.history["loss"]) == 2
    for key in ["loss", "self_loss", "reinforce_loss", "alpha", "mae", "val_loss",
                "val_self_loss", "val_reinforce_loss", "val_mae"]:
        assert key in history.history and np.isfinite(history.history[key]).all()
    assert sorted(os.listdir(tmp_path / "tb")) == ["train", "validation"]
    assert (tmp_path / "ckpt-2.keras").exists()
    restored = keras.saving.load_model(str(tmp_path / "ckpt-2.keras"))
    np.testing.assert_allclose(restored.predict(x, verbose=0)["policy"],
                               tiny_model.predict(x, verbose=0)["policy"], atol=1e-6)
    result = tiny_model.evaluate(val, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["val_loss" if "val_loss" in result else "loss"],
                               history.history["val_loss"][-1], rtol=1e-5)
    predictions = tiny_model.predict(x, verbose=0)
    assert predictions["self"].shape == (64, 6) and predictions["policy"].shape == (64, 3)


def test_backup_and_restore_resumes_after_interruption(tmp_path):
    x, y = make_batch(n=32)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    model = build_tiny_model()
    model.compile(optimizer="adam", alpha=0.5, reward_weighting="awr")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, epochs=4, batch_size=16, callbacks=[backup, Interrupt()], verbose=0)
    resumed = build_tiny_model(seed=5)
    resumed.compile(optimizer="adam", alpha=0.5, reward_weighting="awr")
    history = resumed.fit(x, y, epochs=4, batch_size=16, callbacks=[backup], verbose=0)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_nan_loss_applies_no_gradient_and_stops(optimizer):
    x, y = make_batch(n=48, self_target=True)
    x[40] = np.nan  # in the third batch of 16
    model, reference = build_tiny_model(), build_tiny_model()
    for m in (model, reference):
        m.compile(optimizer=optimizer, alpha=0.5, reward_weighting="normalized")
    reference.fit(x[:32], {k: v[:32] for k, v in y.items()}, batch_size=16, shuffle=False,
                  verbose=0)
    with pytest.warns(RuntimeWarning, match="non-finite loss.*gradient was not applied"):
        history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    for got, want in zip(model.get_weights(), reference.get_weights()):
        assert np.isfinite(got).all()
        if optimizer == "sgd":  # no momentum: the weights are those of the last finite step
            np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda x, y: y.update(reward=y["reward"][:-1]), r'y\["reward"\]` must hold one value'),
        (lambda x, y: y.update(reward=np.where(np.arange(len(x)) == 3, np.nan, y["reward"])),
         r'y\["reward"\]` contains NaN'),
        (lambda x, y: y.update(reward=y["reward"] - 10),
         r'y\["reward"\]` has negative rewards.*' + "use 'normalized', 'awr' or 'filter'"),
        (lambda x, y: y.update(self=y["policy"][:, :1] * 0 + 2.0 + np.zeros_like(x)),
         r'y\["self"\]` must lie in \[0, 1\]'),
        (lambda x, y: x.__setitem__(0, 3.0), r"input `x` \(used as self target\) must lie"),
        (lambda x, y: y.pop("policy"), r'y\["policy"\]` is missing'),
        (lambda x, y: y.pop("reward"), r'y\["reward"\]` is missing'),
        (lambda x, y: y.update(value=y["reward"]), r"`y` has unknown keys \['value'\]"),
    ],
)
@pytest.mark.parametrize("source", ["numpy", "dataset", "dataset_jit"])
def test_bad_input_raises_value_error_before_any_update(tiny_model, mutate, message, source):
    x, y = make_batch(n=32)
    y["reward"] = np.abs(y["reward"])
    mutate(x, y)
    # Graph mode checks in the step; under XLA (no asserts) in the input pipeline.
    tiny_model.compile(optimizer="sgd", alpha=0.5, reward_weighting="raw",
                       jit_compile=source == "dataset_jit")
    before = tiny_model.get_weights()
    with pytest.raises(ValueError, match=message):
        if source == "numpy":
            tiny_model.fit(x, y, batch_size=8, verbose=0)
        else:
            ds = tf.data.Dataset.from_tensors((x, y))
            tiny_model.fit(ds, verbose=0)
    for w0, w1 in zip(before, tiny_model.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_bad_compile_arguments(tiny_model):
    with pytest.raises(ValueError, match="`alpha` must be a float in \\[0, 1\\]"):
        tiny_model.compile(alpha=1.2)
    with pytest.raises(ValueError, match="Unknown `reward_weighting`='best'"):
        tiny_model.compile(reward_weighting="best")
    inputs = keras.Input((3,))
    only_self = kse.SelfEvolvingModel(inputs, {"self": keras.layers.Dense(3)(inputs)})
    with pytest.raises(ValueError, match=r"outputs dict lacks \['policy'\]"):
        only_self.compile(alpha=0.5)
    with pytest.raises(ValueError, match=r"outputs dict lacks \['mask'\]"):
        only_self.compile(alpha=1.0, masked_self_loss=True)


def test_functional_and_subclassed_models_coexist(tiny_model):
    assert isinstance(tiny_model, kse.SelfEvolvingModel)
    assert isinstance(tiny_model, kse.training.FunctionalSelfEvolvingModel)
    assert keras.Model in kse.SelfEvolvingModel.__bases__  # not rewritten to Functional

    class Subclassed(kse.SelfEvolvingModel):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="tanh")
            self.self_head = keras.layers.Dense(6, activation="sigmoid")
            self.policy_head = keras.layers.Dense(3)

        def call(self, x):
            h = self.hidden(x)
            return {"self": self.self_head(h), "policy": self.policy_head(h)}

    model = Subclassed()
    model.compile(optimizer="sgd", alpha=0.5, reward_weighting="awr")
    x, y = make_batch()
    logs = model.fit(x, y, verbose=0).history
    assert np.isfinite(logs["loss"]).all() and "reinforce_loss" in logs


def test_subclassed_model_missing_output_is_caught_at_first_batch():
    class NoPolicy(kse.SelfEvolvingModel):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(6, activation="sigmoid")

        def call(self, x):
            return {"self": self.dense(x)}

    model = NoPolicy()
    model.compile(optimizer="sgd", alpha=0.5, reward_weighting="awr")
    x, y = make_batch()
    with pytest.raises(ValueError, match=r"outputs dict lacks \['policy'\]"):
        model.fit(x, y, verbose=0)


@pytest.mark.parametrize("policy_name", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains(policy_name):
    x, y = make_batch(n=64, self_target=True)
    keras.mixed_precision.set_global_policy(policy_name)
    try:
        model = build_tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), alpha=0.5, reward_weighting="awr")
        assert model.outputs[0].dtype == policy_name.split("_")[1]
        history = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # Loss scaling through optimizer.scale_loss, as Keras sets it up for float16.
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy_name == "mixed_float16")
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    assert all(w.dtype == "float32" for w in model.trainable_weights)


def test_jit_compile_step_equals_graph_step():
    x, y = make_batch(actions=True)
    results = []
    for jit in (False, True):
        model = build_tiny_model()
        model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.4, reward_weighting="filter",
                      jit_compile=jit)
        model.train_on_batch(x, y)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-5)


FRESH_PROCESS_SCRIPT = r"""
import json, sys, numpy as np, keras
import keras_selfevo as kse
model = keras.saving.load_model(sys.argv[1])
data = np.load(sys.argv[2])
x = data["x"]; y = {"policy": data["policy"], "reward": data["reward"]}
report = {
    "class": type(model).__name__,
    "alpha": model.alpha.get_config() if hasattr(model.alpha, "get_config") else model.alpha,
    "weighting": type(model.reward_weighting).__name__,
    "weighting_config": model.reward_weighting.get_config(),
    "optimizer": type(model.optimizer).__name__,
    "iterations": int(model.optimizer.iterations.numpy()),
    "policy": model.predict(x, verbose=0)["policy"].tolist(),
}
history = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
report["loss_after"] = history["loss"][0]
report["iterations_after"] = int(model.optimizer.iterations.numpy())
print(json.dumps(report))
"""


@pytest.mark.slow
def test_keras_file_reloads_in_a_fresh_process_and_fit_continues(tmp_path):
    import subprocess
    import sys

    x, y = make_batch(n=32)
    model = build_tiny_model()
    model.compile(optimizer="adam", alpha=kse.training.CosineAlpha(0.9, 0.2, steps=50),
                  reward_weighting=kse.losses.AWRWeighting(beta=0.5), metrics=["mae"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    np.savez(tmp_path / "data.npz", x=x, policy=y["policy"], reward=y["reward"])
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, path, str(tmp_path / "data.npz")],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["class"] == type(model).__name__ == "FunctionalSelfEvolvingModel"
    assert report["alpha"] == {"start": 0.9, "end": 0.2, "steps": 50}
    assert report["weighting"] == "AWRWeighting"
    assert report["weighting_config"] == {"beta": 0.5, "max_weight": 20.0}
    assert report["optimizer"] == "Adam" and report["iterations"] == 4
    np.testing.assert_array_equal(np.array(report["policy"], np.float32),
                                  model.predict(x, verbose=0)["policy"])
    assert report["iterations_after"] == 6 and np.isfinite(report["loss_after"])


def test_shared_helper_on_self_evolving_model(tiny_model):
    x, _ = make_batch(n=4)
    loaded = kse.testing.run_model_saving_test(
        tiny_model, x, {"self": (None, 6), "policy": (None, 3)},
        fresh_process=False)  # fresh: test_keras_file_reloads_in_a_fresh_process_and_fit_continues
    assert isinstance(loaded, kse.SelfEvolvingModel)


def test_self_from_logits_step_equals_the_formula():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    model = kse.SelfEvolvingModel(inputs, {"self": keras.layers.Dense(6)(hidden),
                                           "policy": keras.layers.Dense(3)(hidden)})
    x, y = make_batch(actions=True)
    before = [w.numpy() for w in model.trainable_weights]
    weights = numpy_weights("awr", y["reward"])
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        l_self = keras.losses.BinaryCrossentropy(from_logits=True)(x, out["self"])
        se = tf.reduce_mean(tf.square(y["policy"] - y["action"] * out["policy"]), axis=-1)
        total = 0.25 * l_self + 0.75 * tf.reduce_mean(weights * se)
    grads = tape.gradient(total, model.trainable_weights)
    model.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.25, reward_weighting="awr",
                  self_from_logits=True)
    model.train_on_batch(x, y)
    for w0, g, w1 in zip(before, grads, model.trainable_weights):
        np.testing.assert_allclose(w1.numpy(), w0 - 0.5 * g.numpy(), atol=1e-6)


def test_a_head_without_targets_is_left_alone_without_a_warning():
    # Self-supervised pretraining: only "self" targets, so the policy head has no gradient.
    model = kse.zoo.build("mnist_cnn", num_classes=3, input_shape=(8, 8, 1), filters=2,
                          units=4, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), alpha=1.0)
    policy_before = [w.copy() for w in model.get_layer("policy").get_weights()]
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, {"self": x}, batch_size=8, epochs=1, verbose=0)
    for before, after in zip(policy_before, model.get_layer("policy").get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(model.get_layer("conv").get_weights()[0],
                              kse.zoo.build("mnist_cnn", num_classes=3, input_shape=(8, 8, 1),
                                            filters=2, units=4, seed=0)
                              .get_layer("conv").get_weights()[0])
    # Built on every weight, as Keras builds it: two Adam slots per trainable variable.
    slots = [v for v in model.optimizer.variables if "momentum" in v.path or
             "velocity" in v.path]
    assert len(slots) == 2 * len(model.trainable_weights)
