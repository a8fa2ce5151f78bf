"""Every tutorial notebook runs top to bottom at its small size."""

import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

GRAPH_MODE_SAMPLING = ("from keras_selfevo.zoo.language_model import LanguageModel\n"
                       "LanguageModel.sampling_jit_compile = False")
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
    # The kernel samples in graph mode, as the suite's own processes do (tests/conftest.py):
    # a tutorial samples a few times at each of several shapes, where XLA's compiles would be
    # most of its time; the README, the demo and the CLI commands sample with XLA. Set after
    # the tutorial's own imports (05 configures devices before TensorFlow starts).
    setup = next(index for index, cell in enumerate(notebook.cells)
                 if "import keras_selfevo" in cell.source)
    notebook.cells.insert(setup + 1, nbformat.v4.new_code_cell(GRAPH_MODE_SAMPLING))
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error
