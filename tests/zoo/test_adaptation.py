"""``kse.adapt`` and ``keras-selfevo adapt``: a language model fitted to the user's own text."""

import hashlib
import json

import keras
import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo import cli

VOCABULARY = "abc \n"
TEXT = "abc abc cab\n" * 60


def tiny_gpt():
    return kse.zoo.build("gpt", vocabulary=VOCABULARY, num_layers=1, num_heads=2, width=16,
                         block_size=16, seed=0)


def test_adapt_lowers_held_back_nats_and_leaves_the_model_unchanged():
    model = tiny_gpt()
    weights = [w.copy() for w in model.get_weights()]
    result = kse.adapt(model, TEXT, steps=40, learning_rate=3e-3, verbose=0)
    assert result.after < result.before - 0.3, (result.before, result.after)
    assert result.held_out_chars == len(TEXT) - int(len(TEXT) * 0.9)
    assert result.train_chars + result.held_out_chars == len(TEXT)
    for before, now in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, now)
    # The scores are the model's own nats/char on the held-back part.
    held = kse.data.text.encode_stream(TEXT, VOCABULARY)[result.train_chars:]
    assert result.after == pytest.approx(result.model.nats_per_char(held, 16), rel=1e-6)
    assert result.before == pytest.approx(model.nats_per_char(held, 16), rel=1e-6)


def _inner_steps_by_hand(net, text_ids, steps, rates, adapted, batch_size=32, window=16):
    """SGD steps ``w - rate * grad`` of the next-token NLL on the windows adapt draws."""
    import tensorflow as tf

    weights = [tf.constant(v.numpy()) for v in net.trainable_variables]
    cut = int(len(text_ids) * 0.9)
    batches = kse.data.window_batches(text_ids[:cut], window, batch_size, 0, 0, steps)
    for x, y in batches.as_numpy_iterator():
        with tf.GradientTape() as tape:
            tape.watch(weights)
            logits = net.stateless_call(weights, [], x, training=True)[0]["self"]
            log_p = tf.nn.log_softmax(logits, axis=-1)
            loss = -tf.reduce_mean(tf.gather(log_p, y["self"], batch_dims=2))
        gradients = tape.gradient(loss, weights)
        weights = [w - rate * tf.convert_to_tensor(g) if keep else w
                   for w, rate, g, keep in zip(weights, rates, gradients, adapted)]
    return [w.numpy() for w in weights]


@pytest.mark.parametrize("algorithm", ["maml", "anil", "metasgd"])
def test_a_meta_learner_adapts_with_its_own_inner_steps(algorithm):
    net = tiny_gpt()
    extra = {"adapt_layers": ["final_norm"]} if algorithm == "anil" else {}
    learner = kse.MetaLearner(net, algorithm, inner_lr=0.05, **extra)
    variables = net.trainable_variables
    rates = [0.05] * len(variables)
    if algorithm == "metasgd":  # learned rates: one per parameter, not all alike
        rng = np.random.default_rng(0)
        for rate in learner.inner_lrs:
            rate.assign(rng.uniform(0.01, 0.1, rate.shape))
        rates = [rate.numpy() for rate in learner.inner_lrs]
    adapted = [algorithm != "anil" or "final_norm" in v.path for v in variables]
    result = kse.adapt(learner, TEXT, steps=3, verbose=0)
    ids = kse.data.text.encode_stream(TEXT, VOCABULARY)
    want = _inner_steps_by_hand(net, ids, 3, rates, adapted)
    for got, expected, variable, changes in zip(result.model.trainable_variables, want,
                                                variables, adapted):
        np.testing.assert_allclose(got.numpy(), expected, atol=2e-6, err_msg=variable.path)
        assert changes == (np.abs(expected - variable.numpy()).max() > 0), variable.path
    assert np.isfinite(result.after)


def test_unknown_characters_are_named_unless_a_policy_is_chosen():
    model = tiny_gpt()
    text = TEXT + "xyz"
    with pytest.raises(ValueError, match="outside the model's vocabulary: 'xyz'"):
        kse.adapt(model, text, steps=1, verbose=0)
    skipped = kse.adapt(model, text, steps=1, unknown="skip", verbose=0)
    replaced = kse.adapt(model, text, steps=1, unknown="replace", placeholder=" ", verbose=0)
    assert skipped.unknown == replaced.unknown == "xyz"
    assert skipped.train_chars + skipped.held_out_chars == len(TEXT)
    assert replaced.train_chars + replaced.held_out_chars == len(text)
    with pytest.raises(ValueError, match="`placeholder`='q' must be one character"):
        kse.adapt(model, text, steps=1, unknown="replace", placeholder="q", verbose=0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "`steps` must be a positive integer"),
    (dict(unknown="drop"), "`unknown` must be one of"),
    (dict(held_out=1.0), "`held_out`"),
    (dict(texts=""), "`texts` is empty"),
    (dict(texts="abc"), "too short"),
])
def test_bad_arguments_fail_before_any_step(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kse.adapt(tiny_gpt(), **{"texts": TEXT, **kwargs})


def test_a_model_without_a_language_head_is_refused():
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="must be a language model of the zoo"):
        kse.adapt(net, TEXT, steps=1)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_adapts_a_saved_model_and_writes_the_result(tmp_path, capsys):
    saved = tmp_path / "lm.keras"
    tiny_gpt().save(saved)
    original = digest(saved)
    text_file = tmp_path / "mine.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "adapted"
    code = cli.main(["adapt", str(saved), str(text_file), "--steps", "30", "--output",
                     str(out), "--learning-rate", "0.003"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "adapt.json").read_text())
    assert report["after_nats_per_char"] < report["before_nats_per_char"]
    assert f"{report['before_nats_per_char']:.4f} -> {report['after_nats_per_char']:.4f}" in printed
    assert digest(saved) == original  # the given model is only read
    reloaded = kse.zoo.load_checkpoint(str(out / "model.keras"))
    held = kse.data.text.encode_stream(TEXT, VOCABULARY)[report["train_chars"]:]
    assert reloaded.nats_per_char(held, 16) == pytest.approx(report["after_nats_per_char"],
                                                             rel=1e-5)


@pytest.mark.slow
def test_cli_export_writes_a_verified_serving_model(tmp_path, capsys):
    saved = tmp_path / "lm.keras"
    tiny_gpt().save(saved)
    text_file = tmp_path / "mine.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "adapted"
    code = cli.main(["adapt", str(saved), str(text_file), "--steps", "2", "--output",
                     str(out), "--export"])
    assert code == 0, capsys.readouterr()
    assert (out / "serving" / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"abc\x00\x01\x02", "is a binary file"),
    (b"abc \xff\xfe", "is not UTF-8 text"),
])
def test_cli_refuses_empty_and_binary_files(tmp_path, capsys, content, message):
    saved = tmp_path / "lm.keras"
    tiny_gpt().save(saved)
    text_file = tmp_path / "mine.txt"
    text_file.write_bytes(content)
    code = cli.main(["adapt", str(saved), str(text_file), "--output", str(tmp_path / "o")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_a_model_without_a_language_head_and_bad_steps(tmp_path, capsys):
    saved = tmp_path / "net.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(saved)
    text_file = tmp_path / "mine.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    assert cli.main(["adapt", str(saved), str(text_file), "--output", str(tmp_path / "o")]) == 2
    assert "must be a language model of the zoo" in capsys.readouterr().err
    assert cli.main(["adapt", str(saved), str(text_file), "--steps", "0", "--output",
                     str(tmp_path / "o")]) == 2
    assert "expected a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_dynamic_evaluation_prints_and_writes_both_scores(tmp_path, capsys):
    saved = tmp_path / "lm.keras"
    model = tiny_gpt()
    model.save(saved)
    text_file = tmp_path / "mine.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "dynamic"
    code = cli.main(["adapt", str(saved), str(text_file), "--dynamic", "--learning-rate",
                     "0.05", "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "adapt.json").read_text())
    ids = kse.data.text.encode_stream(TEXT, VOCABULARY)
    expected = kse.adapt(model, TEXT, dynamic=True, learning_rate=0.05, verbose=0)
    assert report["dynamic"] and report["held_out_chars"] == expected.held_out_chars
    assert report["before_nats_per_char"] == pytest.approx(model.nats_per_char(ids, 16),
                                                           rel=1e-6)
    assert report["after_nats_per_char"] == pytest.approx(expected.after, rel=1e-6)
    assert (f"static {report['before_nats_per_char']:.4f}, dynamic "
            f"{report['after_nats_per_char']:.4f} nats/char") in printed
    assert cli.main(["adapt", str(saved), str(text_file), "--dynamic", "--steps", "5",
                     "--output", str(tmp_path / "o")]) == 2
    assert "`steps` does not apply with --dynamic" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
