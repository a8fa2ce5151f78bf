import os
import subprocess
import sys

import pytest

from keras_selfevo import cli

COMMANDS = ["demo", "train", "meta-train", "evolve", "export", "prepare-mnist"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["bogus"], "invalid choice: 'bogus'"),
        ([], "a command is required"),
        (["demo", "--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
        (["demo", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["train"], "the following arguments are required: recipe"),
        (["evolve"], "the following arguments are required: recipe"),
        (["meta-train"], "the following arguments are required: recipe"),
    ],
)
def test_bad_usage_exits_2_with_one_line(capsys, argv, fragment):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-selfevo: error:")
    assert fragment in lines[0]
    assert captured.out == ""


def test_console_script_error_is_one_stderr_line_without_traceback(console_script):
    result = subprocess.run([console_script, "bogus"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "keras-selfevo: error: argument COMMAND: invalid choice: 'bogus' "
        "(choose from 'demo', 'meta-train', 'train', 'export', 'adapt', 'evolve', "
        "'prepare-mnist', 'recipes', 'presets', 'generate')"
    ]


def test_python_dash_m_is_the_same_quiet_command(tmp_path):
    # TensorFlow's start-up lines are silenced at the source, not by the suite's settings.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "keras_selfevo", "generate", "arithmetic_gru",
                             "--prompt", "1+2=", "--length", "2", "--temperature", "0"],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.startswith("1+2=3")
    usage = subprocess.run([sys.executable, "-m", "keras_selfevo", "bogus"], capture_output=True,
                           text=True, timeout=120, env=env, cwd=tmp_path)
    assert usage.returncode == 2 and usage.stderr.startswith("keras-selfevo: error:")


@pytest.mark.parametrize("argv, orig_argv, quiet", [
    (["/venv/bin/keras-selfevo", "recipes"], ["python", "/venv/bin/keras-selfevo", "recipes"],
     True),
    (["-m", "recipes"], ["python", "-m", "keras_selfevo", "recipes"], True),
    (["-m", "recipes"], ["python", "-m", "keras_selfevo.cli", "recipes"], True),
    (["-m", "recipes", "--verbose"], ["python", "-m", "keras_selfevo.cli", "recipes",
                                      "--verbose"], False),
    (["train.py"], ["python", "train.py"], False),  # a user's script importing the package
    (["-m", "x"], ["python", "-m", "keras_selfevo.zoo", "x"], False),
])
def test_every_way_of_running_the_command_starts_quietly(monkeypatch, argv, orig_argv, quiet):
    from keras_selfevo._internal import quiet as quiet_start

    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    assert quiet_start.quiet_requested() is quiet


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    from keras_selfevo import __version__

    assert capsys.readouterr().out.strip() == f"keras-selfevo {__version__}"




def test_errors_name_the_commands_flags_not_the_python_arguments(tmp_path, capsys):
    """The library says ``unknown='skip'``; under the command the user reads its flags."""
    text = tmp_path / "snow.txt"
    text.write_text("ROMEO: \u2603 the snow\n" * 20, encoding="utf-8")
    assert cli.main(["adapt", "shakespeare_gpt", str(text), "--output", str(tmp_path / "a"),
                     "--steps", "1"]) == 2
    error = capsys.readouterr().err
    assert "pass --unknown skip to drop them, or --unknown replace to map each to " \
           "--placeholder ' '." in error, error
    assert "unknown=" not in error and not (tmp_path / "a").exists()


@pytest.mark.parametrize("message, expected", [
    ("pass overwrite=True to replace it", "pass --overwrite to replace it"),
    ("pass overwrite=False", "pass overwrite=False"),  # not what the switch sets
    ("`placeholder`='q' must be", "--placeholder q must be"),
    ("(or pass data_dir=PREPARED)", "(or pass --data-dir PREPARED)"),
    ("needs keep='all'", "needs keep='all'"),  # a recipe key, not a flag
    ("(--set label=COLUMN)", "(--set label=COLUMN)"),
    ("model_args.units=8", "model_args.units=8"),
])
def test_python_spellings_become_flags(message, expected):
    flags = {"overwrite": ("--overwrite", True), "placeholder": ("--placeholder", None),
             "data_dir": ("--data-dir", None), "label": ("--label", None),
             "units": ("--units", None)}
    assert cli._as_flags(message, flags) == expected
