import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_sdist_carries_models_tutorials_readme_and_license(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )
    (sdist,) = tmp_path.glob("keras_selfevo-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in ("README.md", "LICENSE", "setup.py", "keras_selfevo/__init__.py"):
        assert required in names
    for folder in ("models", "tutorials"):
        shipped = sorted(n for n in names if n.startswith(folder + "/") and "." in n)
        in_repo = sorted(
            os.path.relpath(os.path.join(d, f), ROOT)
            for d, _, files in os.walk(os.path.join(ROOT, folder)) for f in files
            if f.endswith((".json", ".md", ".png", ".ipynb"))
        )
        assert in_repo and shipped == in_repo
