"""Export for serving: fresh-process reload equals predict; atomic, checked, CLI."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo import cli, export

# gpt's export, its text signature included, is checked the same way in tests/zoo/test_gpt.py.
ZOO = {"mnist_cnn": {}, "conv4": {}, "sinusoid_mlp": {}, "char_rnn": {"vocabulary": "()[]"}}
NAMES = {
    "mnist_cnn": ({"image"}, {"self", "policy"}),
    "conv4": ({"image"}, {"logits", "probabilities"}),
    "sinusoid_mlp": ({"x"}, {"predictions"}),
    "char_rnn": ({"tokens"}, {"self", "policy"}),
}


def _signature_names(path, signature="serving_default"):
    loaded = tf.saved_model.load(path)
    fn = loaded.signatures[signature]
    return set(fn.structured_input_signature[1]), set(fn.structured_outputs)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_models_export_reload_fresh_and_match_predict(tmp_path, name):
    model = kse.zoo.build(name, seed=0, **ZOO[name])
    report = export.export_for_serving(model, tmp_path / name)
    # The fresh process ran every signature; differences are measured, not assumed.
    assert report.ok and set(report.max_abs_diff) >= {"serving_default", "serve"}
    assert max(report.max_abs_diff.values()) <= 1e-5
    assert report.path == str(tmp_path / name / "1")
    assert sorted(os.listdir(tmp_path / name)) == ["1"]
    assert os.path.isfile(tmp_path / name / "1" / "saved_model.pb")
    assert _signature_names(report.path) == NAMES[name]
    assert "signature_def['serve']" in report.signatures
    if name == "char_rnn":
        assert {"generate", "generate_text"} <= set(report.max_abs_diff)
    # Variable batch size: a batch of 5 works too.
    loaded = tf.saved_model.load(report.path)
    inputs = export.sample_inputs(model, batch=5)["serving_default"]
    outputs = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    assert all(v.shape[0] == 5 and v.dtype == tf.float32 for v in outputs.values())


def test_the_check_catches_a_wrong_export(tmp_path, monkeypatch):
    model = kse.zoo.build("sinusoid_mlp", seed=0)
    real = export.named_outputs

    def shifted(m, raw):  # the traced serving graph differs from the eager predict by 1e-3
        out = real(m, raw)
        return out if tf.executing_eagerly() else {k: v + 1e-3 for k, v in out.items()}

    monkeypatch.setattr(export.signatures, "named_outputs", shifted)
    report = export.export_for_serving(model, tmp_path / "m")
    assert not report.ok
    assert max(report.max_abs_diff.values()) == pytest.approx(1e-3, rel=1e-2)


def test_mixed_precision_exports_float32(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = kse.zoo.build("conv4", seed=0)
    finally:
        keras.config.set_dtype_policy("float32")
    report = export.export_for_serving(model, tmp_path / "m")
    assert report.ok
    loaded = tf.saved_model.load(report.path).signatures["serve"]
    assert loaded.structured_input_signature[1]["image"].dtype == tf.float32
    assert all(spec.dtype == tf.float32 for spec in loaded.structured_outputs.values())


def test_adapted_meta_learner_model_exports(tmp_path):
    learner = kse.MetaLearner(kse.zoo.build("sinusoid_mlp", seed=0), inner_lr=0.01)
    x = np.linspace(-5, 5, 10, dtype=np.float32)[:, None]
    adapted = learner.adapt(x, np.sin(x), steps=3)
    report = export.export_for_serving(adapted, tmp_path / "adapted", version=7)
    assert report.ok and report.version == 7
    served = tf.saved_model.load(report.path).signatures["serving_default"](x=tf.constant(x))
    np.testing.assert_allclose(served["predictions"].numpy(), adapted.predict(x, verbose=0),
                               atol=1e-5)


def test_versions_count_up_and_are_never_replaced_silently(tmp_path):
    model = kse.zoo.build("sinusoid_mlp", seed=0)
    base = tmp_path / "m"
    assert export.export_for_serving(model, base, verify=False).version == 1
    assert export.export_for_serving(model, base, verify=False).version == 2
    before = (base / "2" / "saved_model.pb").read_bytes()
    stamp = os.stat(base / "2" / "saved_model.pb").st_mtime_ns
    with pytest.raises(ValueError, match="Version 2 already exists"):
        export.export_for_serving(model, base, version=2)
    assert os.stat(base / "2" / "saved_model.pb").st_mtime_ns == stamp
    assert (base / "2" / "saved_model.pb").read_bytes() == before
    other = kse.zoo.build("sinusoid_mlp", seed=1)
    assert export.export_for_serving(other, base, version=2, overwrite=True).ok
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_a_crash_mid_write_leaves_no_version(tmp_path, monkeypatch):
    model = kse.zoo.build("sinusoid_mlp", seed=0)
    written = []

    def crash(staging):  # the SavedModel is written, then the process "dies"
        written.extend(os.listdir(staging))
        raise RuntimeError("injected crash")

    monkeypatch.setattr(export.saved_model, "describe_signatures", crash)
    with pytest.raises(RuntimeError, match="injected crash"):
        export.export_for_serving(model, tmp_path / "m", version=3)
    assert "saved_model.pb" in written
    assert os.listdir(tmp_path / "m") == []


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is not built"):
        export.export_for_serving(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "m")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="is not writable"):
        export.export_for_serving(kse.zoo.build("sinusoid_mlp"), tmp_path / "a_file" / "m")
    with pytest.raises(ValueError, match="`version` must be None or a positive integer"):
        export.export_for_serving(kse.zoo.build("sinusoid_mlp"), tmp_path / "m", version=0)
    assert not (tmp_path / "m").exists()


def test_a_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    # The permission as the operating system reports it, whoever runs the test (root may
    # write anywhere, so the answer is given here rather than by chmod).
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if os.fspath(path) == str(
        locked) else real_access(path, mode))
    with pytest.raises(ValueError, match="is not writable"):
        export.export_for_serving(kse.zoo.build("sinusoid_mlp"), locked / "m")
    assert os.listdir(locked) == []


def test_rest_request_helper_rows_columns_and_errors(tmp_path):
    model = kse.zoo.build("conv4", seed=0)
    path = export.export_for_serving(model, tmp_path / "m", verify=False).path
    images = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    rows = export.serving_request(path, json.dumps({"instances": images.tolist()}))
    assert len(rows["predictions"]) == 2
    np.testing.assert_allclose(rows["predictions"][1]["logits"], expected[1], atol=1e-5)
    named = export.serving_request(path, {"signature_name": "serve",
                                          "instances": [{"image": images[0].tolist()}]})
    np.testing.assert_allclose(named["predictions"][0]["logits"], expected[0], atol=1e-5)
    columns = export.serving_request(path, {"inputs": {"image": images.tolist()}})
    np.testing.assert_allclose(columns["outputs"]["probabilities"],
                               tf.nn.softmax(expected).numpy(), atol=1e-5)
    assert "not found" in export.serving_request(path, {"signature_name": "x",
                                                        "instances": [1]})["error"]
    assert "expects [None, 28, 28, 1]" in export.serving_request(path, {"instances": [[1, 2]]})[
        "error"]
    assert "exactly one of" in export.serving_request(path, {})["error"]
    assert "JSON Parse error" in export.serving_request(path, "{not json")["error"]


def test_cli_exports_checks_and_refuses_unsafe_files(tmp_path, capsys):
    model = kse.zoo.build("mnist_cnn", seed=0)
    checkpoint = tmp_path / "model.keras"
    model.save(checkpoint)
    assert cli.main(["export", str(checkpoint), str(tmp_path / "serving")]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and "signature_def['serving_default']" in out
    assert cli.main(["export", str(checkpoint), str(tmp_path / "serving"), "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err

    inputs = keras.Input((3,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    unsafe.save(tmp_path / "lambda.keras")
    (tmp_path / "weights.h5").write_bytes(b"not a model")
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    for path, fragment in ((tmp_path / "lambda.keras", "safe_mode=True"),
                           (tmp_path / "weights.h5", "must be a .keras file"),
                           (tmp_path / "fake.keras", "is not a .keras file"),
                           (tmp_path / "missing.keras", "No checkpoint at")):
        assert cli.main(["export", str(path), str(tmp_path / "other")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "other").exists()
