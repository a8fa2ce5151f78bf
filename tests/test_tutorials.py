"""Every tutorial notebook runs top to bottom at its small size."""

import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "tutorials",
                                          "*.ipynb")))


def test_there_are_tutorials():
    assert TUTORIALS


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=os.path.basename)
def test_notebook_runs(path, tmp_path, monkeypatch, glyphs_small_dir):
    monkeypatch.setenv("KSE_TUTORIAL_SIZE", "small")
    monkeypatch.setenv("TFDS_DATA_DIR", glyphs_small_dir)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        assert not cell.get("outputs"), f"{path}: outputs must be stripped in git"
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error
