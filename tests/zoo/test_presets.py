"""Presets: every shipped one loads and measures what it recorded; torn copies are refused."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo import cli, presets
from keras_selfevo._internal.machine import cpu_instructions
from keras_selfevo.recipes import presets as recipe_presets
from keras_selfevo.recipes.train import weights_digest

SHIPPED = presets.names()
SLOW = {"maml_glyphs", "shakespeare_poet"}


def _case(name):
    if name == "maml_glyphs":  # its tasks need the whole selfevo_glyphs build
        return pytest.param(name, marks=[pytest.mark.slow,
                                         pytest.mark.xdist_group("glyphs_full")])
    return pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name


def test_the_package_ships_the_presets_its_recipes_make():
    assert set(SHIPPED) <= set(recipe_presets.PRESETS)
    assert {"shakespeare_gpt", "digits_cnn", "maml_sinusoid", "arithmetic_gru"} <= set(SHIPPED)
    for name in SHIPPED:
        meta = presets.metadata(name)
        assert meta["command"].startswith("keras-selfevo ")
        assert meta["recipe"] == recipe_presets.PRESETS[name]["recipe"]
        assert len(meta["weights_sha256"]) == 64 and meta["headline"]


@pytest.mark.parametrize("name", [_case(n) for n in SHIPPED])
def test_a_preset_measures_the_figure_it_recorded(name, tmp_path, request):
    model = kse.zoo.from_preset(name)
    meta = presets.metadata(name)
    assert weights_digest(model) == meta["weights_sha256"]  # bit-identical to the run's
    check = meta["check"]
    data_dir = (request.getfixturevalue("glyphs_full_dir") if name == "maml_glyphs"
                else str(tmp_path / "tfds"))
    measured = recipe_presets.measure(model, check, meta["recipe"], data_dir)
    assert measured == pytest.approx(check["value"], abs=check["tolerance"])


@pytest.mark.slow
def test_the_smallest_preset_is_remade_by_its_recipe(tmp_path, console_script):
    # The preset's own command, in a process of its own as it was made: one CPU device and
    # TensorFlow's default threads (this suite's workers run with fewer, which reorders the
    # sums of a step, and the weights then differ in their last bits).
    meta = presets.metadata("digits_cnn")
    command = meta["command"].split()
    assert command[:2] == ["keras-selfevo", "train"]
    env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTRAOP_THREADS"}
    result = subprocess.run([console_script, *command[1:], "--output", str(tmp_path / "run"),
                             "--data-dir", str(tmp_path / "tfds")], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "history.json").read_text())
    if meta.get("cpu") == cpu_instructions():
        # Made on a CPU with the same instructions: the same kernels, bit for bit.
        assert report["weights_sha256"] == meta["weights_sha256"]
        return
    # Another CPU's kernels round differently and the trajectory moves with them: the remade
    # model measures the figure the preset recorded, within a run-to-run margin.
    model = recipe_presets.model_of_run("digits_cnn", str(tmp_path / "run"))
    check = meta["check"]
    measured = recipe_presets.measure(model, check, meta["recipe"], str(tmp_path / "tfds"))
    assert measured == pytest.approx(check["value"], abs=0.02)


def _copy(name, tmp_path):
    return shutil.copytree(presets.locate(name), tmp_path / name)


def test_a_preset_folder_loads_like_a_checkpoint(tmp_path):
    folder = _copy("maml_sinusoid", tmp_path)
    learner = kse.zoo.load_checkpoint(str(folder))
    assert isinstance(learner, kse.MetaLearner)
    shipped = kse.zoo.load_checkpoint("maml_sinusoid")
    for a, b in zip(learner.get_weights(), shipped.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_torn_and_foreign_preset_folders_are_refused_with_their_reason(tmp_path):
    torn = _copy("maml_sinusoid", tmp_path)
    weights = torn / presets.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="torn or altered"):
        kse.zoo.from_preset(str(torn))
    (torn / presets.METADATA_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="lacks metadata.json"):
        kse.zoo.from_preset(str(torn))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for file in presets.FILES:
        (foreign / file).write_text("{}")
    (foreign / presets.METADATA_FILE).write_text(json.dumps({"keras_version": "3"}))
    with pytest.raises(ValueError, match="not a keras-selfevo preset"):
        kse.zoo.from_preset(str(foreign))
    with pytest.raises(FileNotFoundError, match="shakespeare_gpt"):
        kse.zoo.from_preset("no_such_preset")


def test_save_preset_never_leaves_a_half_written_folder(tmp_path, monkeypatch):
    learner = kse.zoo.from_preset("maml_sinusoid")
    folder = tmp_path / "mine"
    kse.zoo.save_preset(learner, str(folder), description="first")
    before = {f: (folder / f).read_bytes() for f in presets.FILES}
    # It records the CPU's instructions: a remake is bit for bit only on the same ones.
    written = json.loads((folder / presets.METADATA_FILE).read_text())
    assert written["cpu"] == cpu_instructions() and written["cpu"].split()[0]

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(learner), "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        kse.zoo.save_preset(learner, str(folder), description="second")
    assert {f: (folder / f).read_bytes() for f in presets.FILES} == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # no scratch folder left


def test_a_preset_name_works_where_a_checkpoint_path_does(tmp_path, capsys):
    assert cli.main(["generate", "shakespeare_gpt", "--prompt", "ROMEO:", "--length", "20",
                     "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("ROMEO:") and len(printed.strip()) >= 20
    text = "".join(t for _, t in kse.data.shakespeare.split_parts("test"))[:6000]
    result = kse.adapt("shakespeare_gpt", text, steps=2, verbose=0)
    assert np.isfinite(result.before) and np.isfinite(result.after)
    from keras_selfevo.recipes import catalog, evolve

    config = evolve.load_evolve_recipe(catalog.locate("evolve_meter"),
                                       {"pretrained": "shakespeare_gpt"})
    assert config["pretrained"] == "shakespeare_gpt"
    with pytest.raises(FileNotFoundError, match="no checkpoint or preset"):
        evolve.load_evolve_recipe(catalog.locate("evolve_meter"), {"pretrained": "nope"})


def test_presets_are_listed_without_tensorflow(console_script):
    listed = subprocess.run([console_script, "presets"], capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0 and listed.stderr == ""
    for name in SHIPPED:
        assert name in listed.stdout
    probe = ("import sys; sys.argv = ['keras-selfevo', 'presets']; "
             "from keras_selfevo import cli; cli.main(['presets']); "
             "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip().endswith("False"), out.stdout + out.stderr
