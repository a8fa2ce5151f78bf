import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_sdist_carries_models_tutorials_readme_and_license(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir",
         str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )
    # What `pip install .` runs: the build backend must not warn about the metadata.
    log = build.stdout + build.stderr
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
