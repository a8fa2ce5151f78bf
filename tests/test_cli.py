import subprocess

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


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    from keras_selfevo import __version__

    assert capsys.readouterr().out.strip() == f"keras-selfevo {__version__}"


