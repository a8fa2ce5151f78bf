"""``keras-selfevo train``: recipes, bad flags, resume after kill -9, two-process multi-worker."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_selfevo import cli
from keras_selfevo.recipes import train as recipes

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TINY = {
    "name": "tiny", "model": "mnist_cnn", "model_args": {"filters": 4, "units": 8},
    "dataset": "selfevo_glyphs/small", "validation_split": None, "epochs": 2,
    "batch_size": 40, "alpha": 0.5, "masked_self_loss": True,
    "metrics": ["categorical_accuracy"],
}



def _command(recipe, output, data_dir, *extra):
    return [sys.executable, "-m", "keras_selfevo.cli", "train", recipe, "--output", str(output),
            "--data-dir", data_dir, *extra]


def _digest(stdout: str) -> str:
    return next(line.split()[-1] for line in stdout.splitlines()
                if line.startswith("[train] weights sha256"))


def test_train_writes_checkpoint_history_curve_and_logs(tmp_path, glyphs_small_dir, capsys,
                                                        write_recipe):
    out = tmp_path / "run"
    assert cli.main(["train", write_recipe(TINY), "--output", str(out), "--data-dir",
                     glyphs_small_dir, "--epochs", "2", "--set", "batch_size=20",
                     "--set", "epochs=7"]) == 0  # --epochs wins over --set epochs
    history = json.loads((out / "history.json").read_text())
    assert len(history["history"]["loss"]) == 2 and history["config"]["batch_size"] == 20
    assert set(history["history"]) >= {"loss", "self_loss", "reinforce_loss", "alpha",
                                       "categorical_accuracy"}
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert any(name.startswith("events") for _, _, files in os.walk(out / "logs")
               for name in files)
    import keras

    model = keras.saving.load_model(out / "checkpoint.keras")
    assert type(model).__name__ == "FunctionalSelfEvolvingModel"
    assert recipes.weights_digest(model) == _digest(capsys.readouterr().out)
    assert not (out / "backup").exists()  # removed when training finishes


@pytest.mark.parametrize("argv, changes, fragment", [
    (["--strategy", "tpu"], {}, "argument --strategy: invalid choice: 'tpu'"),
    ([], {"epochs": "many"}, "`epochs` must be a positive integer, got 'many'"),
    ([], {"learning_rte": 0.1}, "unknown recipe keys ['learning_rte']"),
    ([], {"model": "resnet"}, "`model` must be one of"),
    ([], {"masked_self_loss": 1}, "`masked_self_loss` must be true or false"),
    (["--set", "alpha=2"], {}, "`alpha` must be a number in [0, 1]"),
    (["--set", "dataset=imagenet2"], {}, "Unknown dataset `name`='imagenet2'"),
    (["--set", "dataset=mnist"], {}, "Dataset 'mnist' is not prepared"),
    (["--resume"], {}, "holds no interrupted run"),
    (["--batch-size", "100000"], {}, "--batch-size 100000 is larger than the 400"),
])
def test_bad_recipe_or_flags_exit_2_with_one_line_and_write_nothing(
        tmp_path, glyphs_small_dir, capsys, argv, changes, fragment, write_recipe):
    out = tmp_path / "run"
    code = cli.main(["train", write_recipe(TINY, **changes), "--output", str(out),
                     "--data-dir", glyphs_small_dir, *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_missing_recipe_is_one_line(tmp_path, capsys):
    assert cli.main(["train", str(tmp_path / "nowhere")]) == 2
    assert "No recipe at" in capsys.readouterr().err


def _run(command, env):
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _kill_at_epoch(command, env, metadata, epoch):
    """Start a training run and kill -9 it once ``metadata`` records ``epoch``."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= (
                epoch):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_together(tmp_path, glyphs_small_dir, write_recipe):
    # No random masking (each replica masks on its own): the run can equal one device's.
    recipe = write_recipe(TINY, epochs=2, batch_size=40, masked_self_loss=False,
                          model_args={"filters": 4, "units": 8, "mask_rate": 0.0})
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    out = tmp_path / "shared"
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes.append(subprocess.Popen(
            _command(recipe, out, glyphs_small_dir, "--strategy", "multiworker"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    results = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr[-3000:]
    digests = [_digest(stdout) for stdout, _ in results]
    assert digests[0] == digests[1]
    # The chief (worker 0) wrote the checkpoint and history; worker 1 wrote nothing there.
    assert "wrote" in results[0][0] and "wrote" not in results[1][0]
    import keras

    model = keras.saving.load_model(out / "checkpoint.keras")
    assert recipes.weights_digest(model) == digests[0]
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history["loss"]) == 2
    # Each worker removed its own backup when training ended.
    assert not (out / "backup").exists() and not (out / "backup-worker-1").exists()
    # The two workers' global batches of 40 trained as one device would have.
    single = tmp_path / "single"
    process = subprocess.run(_command(recipe, single, glyphs_small_dir, "--strategy", "default"),
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert process.returncode == 0, process.stderr[-3000:]
    one_device = keras.saving.load_model(single / "checkpoint.keras")
    initial = kse_build_like(one_device)
    assert max(np.abs(a - b).max() for a, b in zip(one_device.get_weights(), initial)) > 1e-4
    for a, b in zip(model.get_weights(), one_device.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_command_line_trains_on_two_replicas_as_on_one_device(tmp_path, glyphs_small_dir,
                                                                   write_recipe):
    import keras

    recipe = write_recipe(TINY, epochs=1, batch_size=40, masked_self_loss=False,
                          model_args={"filters": 4, "units": 8, "mask_rate": 0.0})
    weights = []
    for strategy in ("default", "mirrored"):
        out = tmp_path / strategy
        assert cli.main(["train", recipe, "--output", str(out), "--data-dir", glyphs_small_dir,
                         "--strategy", strategy]) == 0
        weights.append(keras.saving.load_model(out / "checkpoint.keras").get_weights())
    initial = kse_build_like(keras.saving.load_model(tmp_path / "default" / "checkpoint.keras"))
    assert max(np.abs(a - b).max() for a, b in zip(weights[0], initial)) > 1e-4
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


def kse_build_like(model):
    """The initial weights of the recipe's model (seed 0) of ``model``'s architecture."""
    from keras_selfevo import zoo

    return zoo.build("mnist_cnn", filters=4, units=8, mask_rate=0.0, seed=0,
                     input_shape=model.input_shape[1:],
                     num_classes=model.get_layer("policy").units).get_weights()


@pytest.mark.slow
def test_resume_after_a_kill_or_a_torn_backup_matches_an_uninterrupted_run(
        tmp_path, glyphs_small_dir, write_recipe):
    recipe = write_recipe(TINY, epochs=6, batch_size=40, deterministic=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    full = _run(_command(recipe, tmp_path / "full", glyphs_small_dir, "--strategy", "default"),
                env)

    # Killed after epoch 3 (its backup and the one before it on disk). A copy of that state
    # gets its newest backup torn, as if the kill had come while it was being written.
    out = tmp_path / "killed"
    _kill_at_epoch(_command(recipe, out, glyphs_small_dir, "--strategy", "default"), env,
                   out / "backup" / "training_metadata.json", 3)
    torn = tmp_path / "torn"
    shutil.copytree(out, torn)

    # The resumed run finishes with the same weights, every epoch logged.
    resumed = _run(_command(recipe, out, glyphs_small_dir, "--strategy", "default", "--resume"),
                   env)
    start = int(resumed.stdout.split("[train] resumed at epoch ")[1].split()[0])
    assert 3 <= start < 6
    assert _digest(resumed.stdout) == _digest(full.stdout)
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history["loss"]) == 6

    # A half-written newest backup: it falls back to the one before.
    backup = torn / "backup"
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a torn write
    earlier = json.loads((backup / "training_metadata.json.bkp").read_text())["epoch"]
    resumed = _run(_command(recipe, torn, glyphs_small_dir, "--strategy", "default",
                            "--resume"), env)
    assert "resuming from the one before it" in resumed.stderr
    assert f"[train] resumed at epoch {earlier}" in resumed.stdout
    assert _digest(resumed.stdout) == _digest(full.stdout)


def test_alpha_end_decays_alpha_along_a_cosine_over_the_run(tmp_path, glyphs_small_dir,
                                                            write_recipe):
    out = tmp_path / "run"
    result = recipes.train(write_recipe(TINY, alpha=0.4, alpha_end=0.0), str(out),
                           data_dir=glyphs_small_dir, epochs=2, verbose=0)
    alphas = result["history"]["alpha"]
    # 400 training images, batch 40: 10 steps per epoch, 20 in all; the log is the mean of
    # the epoch's steps.
    alpha = [0.4 * 0.5 * (1 + np.cos(np.pi * step / 20)) for step in range(20)]
    expected = [np.mean(alpha[:10]), np.mean(alpha[10:])]
    np.testing.assert_allclose(alphas, expected, atol=1e-6)
    with pytest.raises(ValueError, match="`alpha_end` must be a number in"):
        recipes.train(write_recipe(TINY, alpha_end=1.5), str(tmp_path / "bad"),
                      data_dir=glyphs_small_dir, verbose=0)
