import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The wheel may carry the presets; all of it stays under this many bytes.
MAX_WHEEL_BYTES = 15_000_000


# What a checkout holds besides the sources: environments and earlier builds' leftovers.
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", ".anchor-venv", "build", "dist",
                                      "*.egg-info", "__pycache__", ".pytest_cache", "site",
                                      "demo_output")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sdist and the wheel, built once from a private copy of the sources (the other
    tests' workers import from, and write caches into, the checkout meanwhile), and the
    build's log."""
    source = tmp_path_factory.mktemp("source") / "keras-selfevo"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir",
         str(out)],
        cwd=source, capture_output=True, text=True, timeout=300,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-5000:]
    return out, log


# One worker runs both tests: they share one build.
@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
def test_sdist_carries_models_tutorials_readme_and_license(built):
    tmp_path, log = built
    # What `pip install .` runs: the build backend must not warn about the metadata.
    assert "deprecat" not in log.lower(), log
    (wheel,) = tmp_path.glob("keras_selfevo-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: Apache-2.0" in archive.read(metadata).decode()
    (sdist,) = tmp_path.glob("keras_selfevo-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in ("README.md", "LICENSE", "pyproject.toml", "setup.py",
                     "keras_selfevo/__init__.py"):
        assert required in names
    for folder in ("models", "tutorials"):
        shipped = sorted(n for n in names if n.startswith(folder + "/") and "." in n)
        in_repo = sorted(
            os.path.relpath(os.path.join(d, f), ROOT)
            for d, _, files in os.walk(os.path.join(ROOT, folder)) for f in files
            if f.endswith((".json", ".md", ".png", ".ipynb"))
        )
        assert in_repo and shipped == in_repo


@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
def test_the_wheel_runs_recipes_by_name_on_your_data_outside_the_clone(built, tmp_path):
    """A new environment with only the built wheel (its dependencies made visible): the
    commands find their recipes and presets by name and train on the user's files."""
    import sysconfig

    import numpy as np

    from keras_selfevo import presets
    from tests.data.test_own_data import image_folder, write_csv

    (wheel,) = built[0].glob("keras_selfevo-*.whl")
    assert os.path.getsize(wheel) <= MAX_WHEEL_BYTES
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"keras_selfevo/presets/{name}/{file}" for name in presets.names()
            for file in presets.FILES} <= names
    shipped = {n for n in names if n.startswith("keras_selfevo/recipes/shipped/")}
    in_repo = {f"keras_selfevo/recipes/shipped/{name}/config.json"
               for name in os.listdir(os.path.join(ROOT, "models"))
               if os.path.isfile(os.path.join(ROOT, "models", name, "config.json"))}
    assert in_repo and shipped == in_repo
    venv = tmp_path / "venv"
    # No pip of its own (bootstrapping one takes seconds): this environment's pip installs
    # into it with --python.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies come from this environment's site-packages (not processed as a site
    # folder, so its editable link to the clone stays out); the package from the wheel.
    with open(os.path.join(site, "dependencies.pth"), "w") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: the development install's metadata is visible through that path,
    # and pip would otherwise take it for this package already installed.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--no-deps", "--ignore-installed", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    command = str(venv / "bin" / "keras-selfevo")

    def run(*args):
        result = subprocess.run([command, *args], cwd=work, capture_output=True, text=True,
                                env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    # Where the package would be imported from (found, not imported: no TensorFlow start).
    located = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import importlib.util; "
                              "print(importlib.util.find_spec('keras_selfevo').origin)"],
                             cwd=work, capture_output=True, text=True, env=env)
    assert located.returncode == 0, located.stderr[-3000:]
    assert located.stdout.startswith(site), located.stdout
    assert "mnist_cnn" in run("recipes") and "label =" in run("recipes", "tabular")
    assert "shakespeare_gpt" in run("presets")
    assert run("generate", "shakespeare_gpt", "--prompt", "ROMEO:", "--length", "10").startswith(
        "ROMEO:")
    images = image_folder(tmp_path / "images", size=(12, 12), per_class=12)
    out = run("train", "mnist_cnn", "--data", str(images), "--output", "run_images",
              "--set", 'model_args={"filters": 4, "units": 8}', "--set", "epochs=1",
              "--set", "batch_size=8")
    assert "held-out accuracy" in out and (work / "run_images" / "checkpoint.keras").exists()
    rng = np.random.default_rng(0)
    table = write_csv(tmp_path / "t.csv", ["x", "kind"],
                      [[f"{v:.2f}", "a" if v > 0 else "b"] for v in rng.normal(size=60)])
    assert "held-out accuracy" in run("train", "tabular", "--data", table, "--set",
                                      "label=kind", "--set", "epochs=2", "--output", "run_t")
