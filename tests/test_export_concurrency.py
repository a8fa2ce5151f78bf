"""Concurrent exports take successive versions; dead exports' staging folders are removed."""

import os
import subprocess
import sys

import pytest

import keras_selfevo as kse


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "m.keras"
    kse.zoo.build("sinusoid_mlp", seed=0).save(path)
    return str(path)


def _export(checkpoint, base_dir, *extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The lock is what is tested, not the fresh-process check (tested in test_export).
    return subprocess.Popen([sys.executable, "-m", "keras_selfevo.cli", "export", checkpoint,
                             str(base_dir), "--no-verify", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_two_concurrent_exports_get_two_versions(tmp_path, checkpoint):
    runs = [_export(checkpoint, tmp_path / "serving") for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    versions = sorted(line.split()[2] for out, _ in outputs for line in out.splitlines()
                      if line.startswith("Exported version"))
    assert versions == ["1", "2"]
    assert all("(not verified)" in out for out, _ in outputs)
    assert sorted(n for n in os.listdir(tmp_path / "serving") if not n.startswith(".")) == [
        "1", "2"]
    assert not [n for n in os.listdir(tmp_path / "serving") if "incomplete" in n]


@pytest.mark.slow
def test_the_same_fixed_version_twice_is_one_export_and_one_clear_error(tmp_path, checkpoint):
    runs = [_export(checkpoint, tmp_path / "serving", "--version", "5") for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert sorted(run.returncode for run in runs) == [0, 2], outputs
    assert any("Version 5 already exists" in err for _, err in outputs)


def test_a_dead_exports_staging_folder_is_removed(tmp_path):
    serving = tmp_path / "serving"
    stale = serving / ".3-incomplete-abcd"
    stale.mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"half")
    report = kse.export.export_for_serving(kse.zoo.build("sinusoid_mlp", seed=0), serving,
                                           verify=False)
    assert report.version == 1 and not stale.exists()
