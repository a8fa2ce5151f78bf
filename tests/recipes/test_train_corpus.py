"""``keras-selfevo train`` on the Shakespeare corpus: random windows, nats/char, resume-safe."""

import json
import os

import numpy as np
import pytest

from keras_selfevo import cli
from keras_selfevo.data import language_data
from keras_selfevo.recipes import train

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
RECIPE = os.path.join(ROOT, "models", "shakespeare_gpt")
SMALL = ["--set", 'model_args={"num_layers": 1, "num_heads": 2, "width": 16, "block_size": 64}',
         "--set", "epochs=2", "--set", "steps_per_epoch=6", "--set", "steps_per_execution=3",
         "--set", "sample_length=20", "--set", "jit_compile=false", "--set", "warmup_steps=2",
         "--set", "learning_rate=0.01"]


def test_gpt_recipe_trains_scores_nats_per_char_and_samples(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", RECIPE, "--output", str(out), "--data-dir", str(tmp_path / "d"),
                     *SMALL]) == 0
    report = json.loads((out / "history.json").read_text())
    # Twelve steps learn the characters' frequencies at least: well below a uniform guess
    # over the 87 ids (4.47 nats), near the unigram entropy (3.2 nats).
    assert 0 < report["validation_nats_per_char"] < np.log(87) - 0.7
    assert report["train_seconds"] > 0 and len(report["sample"]) <= 21
    assert len(report["history"]["self_loss"]) == 2
    printed = capsys.readouterr().out
    assert "validation" in printed and "nats/char" in printed
    # alpha is fixed at 1: the bar leaves out the reinforce term and alpha, the log keeps them.
    assert "self_loss" in printed and "reinforce_loss" not in printed and "alpha" not in printed
    assert "reinforce_loss" in (out / "history.csv").read_text().splitlines()[0]


def test_windows_are_deterministic_and_resume_where_they_stopped():
    ids = np.arange(1000, dtype=np.int32)
    whole = list(language_data.window_batches(ids, 8, 3, seed=5, first_step=0, steps=6)
                 .as_numpy_iterator())
    resumed = list(language_data.window_batches(ids, 8, 3, seed=5, first_step=4, steps=6)
                   .as_numpy_iterator())
    for (x_a, y_a), (x_b, y_b) in zip(whole[4:], resumed):
        np.testing.assert_array_equal(x_a, x_b)
        np.testing.assert_array_equal(y_a["self"], y_b["self"])
    x, y = whole[0]
    np.testing.assert_array_equal(y["self"], x + 1)  # the target is the next id


def test_a_corpus_recipe_needs_steps_and_a_window(write_recipe):
    recipe = write_recipe({"model": "gpt", "dataset": "selfevo_shakespeare",
                           "sequence_length": 64})
    with pytest.raises(ValueError, match="set `steps_per_epoch` and `sequence_length`"):
        train.load_train_recipe(recipe)


def test_steps_per_execution_must_divide_the_epoch(tmp_path, capsys):
    # Keras would run a whole execution past the epoch's end, into the next epoch's batches.
    assert cli.main(["train", RECIPE, "--output", str(tmp_path / "run"), "--data-dir",
                     str(tmp_path / "d"), *SMALL, "--set", "steps_per_execution=4"]) == 2
    assert ("`steps_per_execution`=4 must divide the 6 steps of an epoch"
            in capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_bad_optimizer_values_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="the command line: `beta_2` must be a number in"):
        train.load_train_recipe(RECIPE, {"beta_2": 1.5})
    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        train.load_train_recipe(RECIPE, {"optimizer": "sgd"})


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_training_rate_counts_every_step_whatever_steps_per_execution(steps_per_execution):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    rate = train.TrainingRate(warmup=6)
    x = np.zeros((64, 3), np.float32)
    model.fit(x, x[:, :1], batch_size=2, epochs=1, callbacks=[rate], verbose=0)
    assert rate.steps == 32
    # The clock starts at the first callback after 6 steps: step 6 or, 4 at a time, step 8.
    assert rate._timed_from == (6 if steps_per_execution == 1 else 8)
    assert rate.rate is not None and rate.rate > 0


@pytest.mark.slow
def test_steps_per_execution_does_not_change_the_weights(tmp_path):
    """The gpt recipes run 100 steps per execution: the same weights, bit for bit, as 1."""
    overrides = {"model_args": {"num_layers": 1, "num_heads": 2, "width": 16,
                                "block_size": 64},
                 "epochs": 2, "steps_per_epoch": 10, "sample_length": 0}
    digests = [train.train(RECIPE, str(tmp_path / f"run{spe}"), data_dir=str(tmp_path / "d"),
                           overrides={**overrides, "steps_per_execution": spe},
                           verbose=0)["weights_sha256"]
               for spe in (1, 10)]
    assert digests[0] == digests[1]
