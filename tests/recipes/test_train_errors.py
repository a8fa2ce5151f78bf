"""``keras-selfevo train``: refused runs write nothing and say what to do."""

import json
import os

from keras_selfevo import cli

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
RECIPE = os.path.join(ROOT, "models", "mnist_cnn")


def test_output_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "weights.h5"
    target.write_text("keep me")
    assert cli.main(["train", RECIPE, "--output", str(target)]) == 2
    assert "`--output`" in capsys.readouterr().err and target.read_text() == "keep me"


def test_truncated_backup_metadata_names_the_file(tmp_path, capsys):
    backup = tmp_path / "run" / "backup"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": ')
    code = cli.main(["train", RECIPE, "--output", str(tmp_path / "run"), "--resume",
                     "--set", "max_train_examples=64", "--set", "validation_split=null",
                     "--set", 'model_args={"filters": 2, "units": 4}'])
    err = capsys.readouterr().err
    assert code == 2 and "training_metadata.json" in err and "Start over" in err


def test_unknown_model_args_and_meta_models_fail_before_any_output(tmp_path, capsys):
    for flags in (["--set", 'model_args={"nope": 1}'], ["--set", "model=conv4"],
                  ["--set", "learning_rate=NaN"]):
        out = tmp_path / "out"
        assert cli.main(["train", RECIPE, "--output", str(out), *flags]) == 2
        assert not out.exists(), flags
    err = capsys.readouterr().err
    assert "`model_args` ['nope']" in err and "`learning_rate` must be a number > 0" in err
    json.dumps(err)


def test_every_backup_torn_is_one_line_naming_the_file(tmp_path, capsys):
    backup = tmp_path / "run" / "backup"
    backup.mkdir(parents=True)
    for suffix in ("", ".bkp"):
        (backup / f"latest.weights.h5{suffix}").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
        (backup / f"training_metadata.json{suffix}").write_text('{"epoch": 1}')
    (tmp_path / "run" / "checkpoint.keras").write_bytes(b"PK")
    code = cli.main(["train", RECIPE, "--output", str(tmp_path / "run"), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "latest.weights.h5" in err[0] and "cannot resume" in err[0]
    assert "checkpoint.keras" in err[0] and "Start over" in err[0]


def test_model_arguments_that_do_not_build_write_nothing(tmp_path, capsys, glyphs_small_dir):
    out = tmp_path / "out"
    bad = ['model_args={"decoder": "deconv"}', 'model_args={"mask_rate": 2}']
    for setting in bad:
        assert cli.main(["train", RECIPE, "--output", str(out), "--data-dir", glyphs_small_dir,
                         "--set", "dataset=selfevo_glyphs/small", "--set", setting]) == 2
        assert not out.exists(), setting
    err = capsys.readouterr().err
    assert "`decoder` must be one of" in err and "`rate`" in err
