"""The user's own files: image folders, tables, text and labelled texts, and their errors."""

import csv

import numpy as np
import pytest
import tensorflow as tf

import keras_selfevo as kse
from keras_selfevo.data.image_folder import read_image_folder
from keras_selfevo.data.table import read_table
from keras_selfevo.data.text_files import UNKNOWN, read_labelled_texts, read_text


def write_image(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    encode = tf.io.encode_jpeg if path.suffix == ".jpg" else tf.io.encode_png
    tf.io.write_file(str(path), encode(np.asarray(image, np.uint8)))


def image_folder(root, classes=("cat", "dog"), per_class=10, size=(8, 8), channels=1):
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.png",
                        rng.integers(0, 255, (*size, channels)) // (label + 1))
    return root


def test_a_folder_of_images_reads_its_classes_and_holds_back_a_stratified_split(tmp_path):
    root = image_folder(tmp_path / "images")
    write_image(root / "unlabeled" / "u.png", np.zeros((8, 8, 1)))
    datasets, info = kse.data.from_directory(str(root), validation_fraction=0.2)
    assert info["class_names"] == ["cat", "dog"] and info["num_classes"] == 2
    assert info["input_shape"] == (8, 8, 1) and info["unlabeled"] == 1
    validation = list(datasets["validation"].as_numpy_iterator())
    assert len(validation) == 4  # 2 of each class
    assert sorted(int(y["policy"].argmax()) for _, y in validation) == [0, 0, 1, 1]
    train = list(datasets["train"].as_numpy_iterator())
    assert len(train) == 17
    unlabeled = [y for _, y in train if y["reward"] == 0]
    assert len(unlabeled) == 1 and not unlabeled[0]["policy"].any()
    x, _ = train[0]
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    # The same call gives the same split and order.
    again = list(kse.data.from_directory(str(root), validation_fraction=0.2)[0]["train"]
                 .as_numpy_iterator())
    np.testing.assert_array_equal(again[3][0], train[3][0])


def test_mixed_channels_and_sizes_are_converted_and_said(tmp_path):
    root = image_folder(tmp_path / "images")
    write_image(root / "cat" / "colour.jpg", np.full((12, 10, 3), 200))
    data = read_image_folder(str(root))
    assert data.info["input_shape"] == (8, 8, 3)
    assert any("channels" in note for note in data.notes)
    assert any("resized 1 images" in note for note in data.notes)
    resized = read_image_folder(str(root), image_size=(4, 6))
    assert resized.info["input_shape"] == (4, 6, 3)


@pytest.mark.parametrize("setup, error, message", [
    (lambda root: root.mkdir(), ValueError, "holds no images in class subfolders"),
    (lambda root: image_folder(root, classes=("cat",)), ValueError, "one class only"),
    (lambda root: (image_folder(root), (root / "dog" / "broken.png").write_bytes(b"nope")),
     ValueError, r"cannot decode the image .*broken\.png"),
    (lambda root: (image_folder(root), (root / "bird").mkdir()), ValueError,
     r"class folder .*bird' holds no image"),
    (lambda root: None, FileNotFoundError, "no file or folder"),
])
def test_bad_image_folders_are_clear_errors(tmp_path, setup, error, message):
    root = tmp_path / "images"
    setup(root)
    with pytest.raises(error, match=message):
        read_image_folder(str(root))


def write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def test_a_table_types_its_columns_and_keeps_training_statistics(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[f"{rng.normal(10, 2):.3f}", rng.choice(["red", "blue"]), "" if i == 3 else
             f"{rng.normal():.3f}", ["a", "b", "c"][i % 3]] for i in range(60)]
    path = write_csv(tmp_path / "t.tsv", ["size", "colour", "weight", "kind"], rows, "\t")
    data = read_table(path, label="kind", validation_fraction=0.2)
    info = data.info
    assert info["task"] == "classification" and info["class_names"] == ["a", "b", "c"]
    assert info["numeric"] == ["size", "weight"] and list(info["categorical"]) == ["colour"]
    sizes = data.train["x"]["size"][:, 0]
    assert info["means"][0] == pytest.approx(sizes.mean(), rel=1e-5)
    assert info["variances"][0] == pytest.approx(sizes.var(), rel=1e-4)
    assert any("filled 1 empty cells of 'weight'" in note for note in data.notes)
    assert len(data.validation["label"]) == 12  # 4 of each class
    model = kse.zoo.build("tabular", seed=0, **kse.zoo.tabular_arguments(info))
    out = model.predict(data.validation["x"], verbose=0)
    assert out["policy"].shape == (12, 3)
    np.testing.assert_allclose(out["policy"].sum(-1), 1, rtol=1e-5)


def test_a_numeric_label_with_many_values_is_a_regression(tmp_path):
    rows = [[f"{i / 10}", f"{i * 1.5 + 3}"] for i in range(50)]
    data = read_table(write_csv(tmp_path / "r.csv", ["x", "y"], rows))  # the last column
    assert data.info["task"] == "regression" and data.info["label"] == "y"
    assert data.info["label_std"] > 0


@pytest.mark.parametrize("rows, label, message", [
    ([["1", "a"], ["2", "b"]], "target", r"has no column 'target'; its columns are \['x', 'y'\]"),
    ([["1", "a"]] * 5, "y", "has one value only"),
    ([[str(i), "a" if i % 2 else "b"] for i in range(30)] + [["ten", "a"]], "y",
     r"column 'x' .* holds numbers, but row 32 has 'ten'"),
])
def test_bad_tables_are_clear_errors(tmp_path, rows, label, message):
    path = write_csv(tmp_path / "t.csv", ["x", "y"], rows)
    with pytest.raises(ValueError, match=message):
        read_table(path, label=label)


def test_text_files_build_a_vocabulary_and_hold_back_each_file_s_end(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("abcab" * 40 + "é")
    (folder / "b.md").write_text("cabba" * 40)
    data = read_text(str(folder), max_vocabulary=6)  # 3 special tokens, a, b, unknown
    assert data.info["vocabulary"] == "ab" + UNKNOWN and data.info["files"] == 2
    assert any("rare characters" in note for note in data.notes)
    assert len(data.train["ids"]) == 180 + 180 and len(data.validation["ids"]) == 21 + 20
    datasets, info = kse.data.from_text(str(folder / "b.md"), window=8)
    x, y = next(datasets["train"].as_numpy_iterator())
    np.testing.assert_array_equal(x[1:], y["self"][:-1])


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe bad bytes", "is not UTF-8 text"),
    (b"binary\x00file", "is a binary file"),
    (b"   ", "is empty"),
])
def test_bad_text_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_text(str(path))


def test_a_text_too_short_for_one_window_is_a_clear_error(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("short text")
    with pytest.raises(ValueError, match="too short for one window of 64"):
        kse.data.from_text(str(path))


def test_labelled_texts_encode_and_keep_unlabelled_rows(tmp_path):
    rows = [["good film" * 3, "pos"], ["bad film", "neg"], ["no label here", ""]] * 10
    path = write_csv(tmp_path / "reviews.csv", ["review", "sentiment"], rows)
    data = read_labelled_texts(path, text_column="review", label="sentiment", length=12,
                               validation_fraction=0.2)
    assert data.info["class_names"] == ["neg", "pos"] and data.info["unlabeled"] == 10
    assert data.train["x"].shape[1] == 13 and (data.train["x"][:, 0] == 1).all()
    assert (data.train["label"] == -1).sum() == 10  # unlabelled rows train the self-loss
    with pytest.raises(ValueError, match=r"no column 'text'; its columns are"):
        read_labelled_texts(path, label="sentiment")
