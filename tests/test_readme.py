"""The README's Python snippets run as written, on the files they name, in a fresh process."""

import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNIPPET = re.compile(r"```python\n(.*?)```", re.S)


def snippets(path: str) -> list[str]:
    """The ```python blocks of a markdown file, in order."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return SNIPPET.findall(handle.read())


def _user_files(folder: str) -> None:
    """What the snippets read: a folder of images, a table, a text, labelled texts."""
    import tensorflow as tf
    from sklearn.datasets import load_wine

    from keras_selfevo.data import shakespeare

    rng = np.random.default_rng(0)
    for label, axis in (("bars", 0), ("columns", 1)):
        os.makedirs(os.path.join(folder, "my_images", label))
        for index in range(16):
            image = rng.integers(0, 60, (20, 20, 1)).astype(np.uint8)
            line = [slice(None), slice(None)]
            line[axis] = slice(8, 12)
            image[tuple(line)] = 255
            tf.io.write_file(os.path.join(folder, "my_images", label, f"{index}.png"),
                             tf.io.encode_png(image))
    wine = load_wine()
    with open(os.path.join(folder, "wine.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(wine.feature_names) + ["target"])
        writer.writerows(list(x) + [y] for x, y in zip(wine.data, wine.target))
    with open(os.path.join(folder, "my_text.txt"), "w", encoding="utf-8") as handle:
        handle.write(shakespeare.split_parts("train")[0][1][:20000])
    words = {"good": "a fine, warm and lovely film", "bad": "a dull, cold and tiresome film"}
    with open(os.path.join(folder, "reviews.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        for index in range(60):
            sentiment = ("good", "bad")[index % 2]
            writer.writerow([f"{words[sentiment]}, number {index}.",
                             "" if index % 5 == 4 else sentiment])


def test_the_readme_has_a_quick_start_for_each_kind_of_data():
    code = "\n".join(snippets("README.md"))
    for reader in ("from_directory", "from_table", "from_text", "from_labelled_texts"):
        assert f"kse.data.{reader}(" in code
    for part in ("SelfEvolution", "MetaLearner", "export_for_serving"):
        assert part in code


@pytest.mark.slow
def test_the_readme_snippets_run_as_written(tmp_path):
    _user_files(str(tmp_path))
    program = "\n".join(snippets("README.md"))
    environment = {**os.environ, "TFDS_DATA_DIR": str(tmp_path / "tfds"),
                   "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "serving" / "sine" / "1" / "saved_model.pb").is_file()
