"""``--data PATH``: the recipes on the user's own files, and the commands around them."""

import json
import re
import subprocess

import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo import cli
from tests.data.test_own_data import image_folder, write_csv, write_image

TINY_CNN = ["--set", 'model_args={"filters": 4, "units": 8}', "--set", "epochs=1",
            "--set", "batch_size=8"]


def _last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()


def test_train_on_a_folder_of_images_with_unlabeled_ones(tmp_path, capsys):
    root = image_folder(tmp_path / "images", size=(12, 12), per_class=12)
    write_image(root / "unlabeled" / "u.png", np.zeros((12, 12, 1)))
    out = tmp_path / "run"
    assert cli.main(["train", "mnist_cnn", "--data", str(root), "--output", str(out),
                     *TINY_CNN]) == 0
    printed = "\n".join(_last_line(capsys))
    assert "held-out accuracy" in printed
    report = json.loads((out / "history.json").read_text())
    assert report["config"]["data"] == str(root)
    assert 0 <= report["validation_accuracy"] <= 1
    model = kse.zoo.load_checkpoint(str(out / "checkpoint.keras"))
    assert model.input_shape == (None, 12, 12, 1)


@pytest.mark.slow
def test_train_tabular_classifies_and_regresses_raw_rows(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [[f"{v:.3f}", c, "big" if v + (c == "red") > 0.5 else "small"]
            for v, c in zip(rng.normal(size=80), rng.choice(["red", "blue"], 80))]
    table = write_csv(tmp_path / "t.csv", ["size", "colour", "class"], rows)
    out = tmp_path / "run"
    assert cli.main(["train", "tabular", "--data", table, "--set", "label=class",
                     "--output", str(out), "--set", "epochs=40"]) == 0
    report = json.loads((out / "history.json").read_text())
    assert report["validation_accuracy"] > 0.7
    model = kse.zoo.load_checkpoint(str(out / "checkpoint.keras"))
    raw = {"size": np.array([[2.0], [-2.0]], np.float32), "colour": np.array([["red"], ["blue"]],
                                                                             object)}
    assert model.predict(raw, verbose=0)["policy"].argmax(-1).tolist() == [0, 1]  # big, small
    values = [[f"{x:.3f}", f"{3 * x + 1 + 0.1 * rng.normal():.3f}"]
              for x in rng.normal(size=120)]
    regression = write_csv(tmp_path / "r.csv", ["x", "y"], values)
    assert cli.main(["train", "tabular", "--data", regression, "--output",
                     str(tmp_path / "reg"), "--set", "epochs=40"]) == 0
    assert json.loads((tmp_path / "reg" / "history.json").read_text())["validation_r2"] > 0.8
    capsys.readouterr()


def test_early_stopping_keeps_the_best_epoch_of_rows_held_back_from_training(tmp_path):
    from keras_selfevo.recipes.train import held_back_rows, train

    rng = np.random.default_rng(1)
    values = [[f"{x:.3f}", f"{np.sin(3 * x) + 0.5 * rng.normal():.3f}"]
              for x in rng.normal(size=120)]
    table = write_csv(tmp_path / "noisy.csv", ["x", "y"], values)
    result = train("tabular", str(tmp_path / "run"), verbose=0,
                   overrides={"data": table, "epochs": 60, "early_stopping": 3,
                              "learning_rate": 0.03})
    losses = result["history"]["early_stopping_loss"]
    best = int(np.argmin(losses))
    assert result["summary"]["early_stopping_epoch"] == best + 1
    assert len(losses) == best + 1 + 3 < 60  # stopped after 3 epochs without a new best
    # The checkpoint holds the best epoch's weights: its loss on the held-back rows is the
    # best one logged, not the last.
    model = kse.zoo.load_checkpoint(str(tmp_path / "run" / "checkpoint.keras"))
    data = kse.data.table.read_table(table, seed=0)
    _, held = held_back_rows(data.train, 0)
    predicted = model.predict(held["x"], verbose=0)["policy"][:, 0]
    assert np.mean((held["label"] - predicted) ** 2) == pytest.approx(losses[best], rel=1e-4)
    assert losses[-1] > losses[best]


def test_a_language_model_trains_on_a_folder_of_text_files(tmp_path, capsys):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "one.txt").write_text("the cat sat on the mat. " * 60)
    (folder / "two.md").write_text("a dog ran in the fog. " * 60)
    out = tmp_path / "run"
    assert cli.main(["train", "shakespeare_gpt", "--data", str(folder), "--output", str(out),
                     "--set", 'model_args={"num_layers": 1, "num_heads": 2, "width": 16}',
                     "--set", "epochs=1", "--set", "steps_per_epoch=10",
                     "--set", "steps_per_execution=10", "--set", "jit_compile=false",
                     "--set", "sample_length=20", "--set", "sequence_length=16",
                     "--set", "eval_window=16"]) == 0
    report = json.loads((out / "history.json").read_text())
    assert 0 < report["validation_nats_per_char"] < np.log(20)
    model = kse.zoo.load_checkpoint(str(out / "checkpoint.keras"))
    assert set(model.vocabulary) == set("the catsonm.adogrinf")
    assert cli.main(["generate", str(out / "checkpoint.keras"), "--prompt", "the ",
                     "--length", "12", "--num-samples", "2", "--seed", "3"]) == 0
    samples = _last_line(capsys)[-2:]
    assert all(s.startswith("the ") and len(s) <= 16 for s in samples)


def test_text_classifier_learns_labels_beside_the_next_character(tmp_path, capsys):
    rows = [["abab " * 8, "a"], ["cdcd " * 8, "c"], ["abcd " * 8, ""]] * 12
    table = write_csv(tmp_path / "texts.csv", ["text", "kind"], rows)
    out = tmp_path / "run"
    assert cli.main(["train", "text_classifier", "--data", table, "--set", "label=kind",
                     "--output", str(out), "--set", "epochs=3", "--set", "batch_size=8",
                     "--set", "sequence_length=20",
                     "--set", 'model_args.body_args={"embed_dim": 8, "units": 16}']) == 0
    report = json.loads((out / "history.json").read_text())
    assert report["validation_accuracy"] == 1.0
    assert report["history"]["self_loss"][-1] < report["history"]["self_loss"][0]
    capsys.readouterr()


def test_evolve_and_meta_train_read_a_folder_of_images(tmp_path, capsys):
    root = image_folder(tmp_path / "images", classes="abcdefghij", per_class=6, size=(28, 28))
    assert cli.main(["evolve", "evolve_bandit_glyphs", "--data", str(root), "--output",
                     str(tmp_path / "evolve"), "--set", "generations=1",
                     "--set", "samples_per_generation=16", "--set", "baseline=false",
                     "--set", "batch_size=16", "--set", 'model_args={"filters": 4, "units": 8}',
                     "--set", "validation_fraction=0.3"]) == 0
    assert cli.main(["meta-train", "maml_glyphs", "--data", str(root), "--output",
                     str(tmp_path / "meta"), "--set", "ways=2", "--iterations", "2",
                     "--set", "evaluate_at=[2]", "--set", "eval_tasks=8",
                     "--set", "meta_batch_size=4", "--set", "steps_per_execution=1",
                     "--set", "rotations=false", "--set", 'model_args={"filters": 4}',
                     "--set", "queries=3", "--set", "eval_queries=3"]) == 0
    results = json.loads((tmp_path / "meta" / "results.json").read_text())
    assert results["evaluations"]["2"]["1_step"]["accuracy"]["tasks"] == 8
    capsys.readouterr()


@pytest.mark.parametrize("make, recipe, message", [
    (lambda p: str(p / "missing"), "mnist_cnn", "`data`: no file or folder at"),
    (lambda p: (p / "empty").mkdir() or str(p / "empty"), "mnist_cnn",
     "holds no images in class subfolders"),
    (lambda p: write_csv(p / "t.csv", ["a", "b"], [["1", "x"], ["2", "y"]]), "tabular",
     r"no column 'target'; its columns are \['a', 'b'\]"),
    (lambda p: (p / "bin.txt").write_bytes(b"\x00\x01") and str(p / "bin.txt"),
     "shakespeare_gpt", "is a binary file"),
    (lambda p: str(p), "maml_sinusoid", "not train on your own files"),
])
def test_bad_data_is_one_line_and_writes_nothing(tmp_path, capsys, make, recipe, message):
    path = make(tmp_path)
    out = tmp_path / "out"
    command = "meta-train" if recipe == "maml_sinusoid" else "train"
    assert cli.main([command, recipe, "--data", path, "--output", str(out),
                     "--set", "label=target"] if recipe == "tabular" else
                    [command, recipe, "--data", path, "--output", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("keras-selfevo: error:"), error
    assert re.search(message, error), error
    assert not out.exists()


def test_recipes_are_listed_fast_and_described(console_script):
    listed = subprocess.run([console_script, "recipes"], capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0 and listed.stderr == ""
    names = [line.split()[0] for line in listed.stdout.splitlines()[1:] if line.strip()
             and not line.startswith("Run one")]
    assert {"mnist_cnn", "tabular", "text_classifier", "evolve_meter", "maml_sinusoid"} <= set(
        names)
    described = subprocess.run([console_script, "recipes", "tabular"], capture_output=True,
                               text=True, timeout=120)
    assert described.returncode == 0, described.stderr
    for key in ("label =", "reinforce_loss =", "validation_fraction ="):
        assert key in described.stdout, key


def test_the_command_line_names_the_source_of_a_bad_model_argument(tmp_path, capsys):
    assert cli.main(["train", "mnist_cnn", "--output", str(tmp_path / "o"),
                     "--set", "model_args.filterz=3"]) == 2
    error = capsys.readouterr().err
    assert "the command line: `model_args` ['filterz']" in error
    assert cli.main(["evolve", "mnist_cnn"]) == 2
    assert "is a recipe of `keras-selfevo train`" in capsys.readouterr().err
