import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_selfevo.data import GlyphsConfig, glyph_drawing


def _split_arrays(data_dir, name="selfevo_glyphs/small"):
    splits = tfds.load(name, data_dir=data_dir, split=["train", "validation", "test"])
    result = {}
    for split, ds in zip(["train", "validation", "test"], splits):
        examples = list(tfds.as_numpy(ds))
        result[split] = {
            key: np.stack([example[key] for example in examples]) for key in examples[0]
        }
    return result


def test_small_config_loads_offline_with_expected_features(glyphs_small_dir):
    data = _split_arrays(glyphs_small_dir)
    config = tfds.builder("selfevo_glyphs/small").builder_config
    for split, alphabets in config.split_alphabets().items():
        images, labels = data[split]["image"], data[split]["label"]
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28, 1)
        expected_classes = len(alphabets) * config.chars_per_alphabet
        assert len(np.unique(labels)) == expected_classes
        assert len(images) == expected_classes * config.samples_per_class
        np.testing.assert_array_equal(
            data[split]["alphabet"], labels // config.chars_per_alphabet
        )


def test_split_class_sets_are_disjoint(glyphs_small_dir):
    data = _split_arrays(glyphs_small_dir)
    classes = {split: set(arrays["label"].tolist()) for split, arrays in data.items()}
    assert not classes["train"] & classes["validation"]
    assert not classes["train"] & classes["test"]
    assert not classes["validation"] & classes["test"]


def test_same_seed_gives_byte_identical_images(glyphs_small_dir, tmp_path):
    first = _split_arrays(glyphs_small_dir)
    second = _split_arrays(str(tmp_path))  # prepared again from scratch
    for split in first:
        order_a = np.lexsort((first[split]["sample"], first[split]["label"]))
        order_b = np.lexsort((second[split]["sample"], second[split]["label"]))
        assert first[split]["image"][order_a].tobytes() == second[split]["image"][order_b].tobytes()


def test_other_seed_draws_other_glyphs():
    a = glyph_drawing.draw_class(seed=0, alphabet=0, index=0, num_samples=3)
    b = glyph_drawing.draw_class(seed=1, alphabet=0, index=0, num_samples=3)
    assert a.shape == b.shape == (3, 28, 28, 1)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10


def test_samples_are_jittered_but_closer_to_their_own_class(glyphs_small_dir):
    train = _split_arrays(glyphs_small_dir)["train"]
    images = train["image"].reshape(len(train["image"]), -1).astype(np.float32) / 255
    labels = train["label"]
    # No two samples of a class are identical: jitter is applied per sample.
    for label in np.unique(labels):
        members = images[labels == label]
        assert len({m.tobytes() for m in members}) == len(members)
    # Nearest class mean (of the other samples) recovers most labels: a class is a shape.
    correct = 0
    classes = np.unique(labels)
    for index in range(0, len(images), 7):
        keep = np.arange(len(images)) != index
        means = np.stack([images[keep & (labels == c)].mean(0) for c in classes])
        correct += classes[np.argmin(((means - images[index]) ** 2).sum(1))] == labels[index]
    assert correct / len(range(0, len(images), 7)) > 0.6


def test_glyph_ink_stays_inside_the_image():
    images = glyph_drawing.draw_class(seed=0, alphabet=3, index=61, num_samples=20)
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1
    )
    assert border.mean() < 25  # only noise on the border, no cut strokes
    assert images.max() == 255


def test_config_sizes():
    config = GlyphsConfig(name="x", alphabets_per_split=(2, 1, 3), chars_per_alphabet=4)
    assert config.num_classes == 24
    assert config.split_alphabets() == {
        "train": range(0, 2), "validation": range(2, 3), "test": range(3, 6)
    }


@pytest.mark.slow
@pytest.mark.xdist_group("glyphs_full")
def test_default_config_has_over_1000_classes_with_20_samples(glyphs_full_dir):
    tmp_path = glyphs_full_dir
    config = tfds.builder("selfevo_glyphs", data_dir=tmp_path).builder_config
    assert config.num_classes >= 1000 and config.samples_per_class >= 20
    labels = {}
    for split in ("train", "validation", "test"):
        ds = tfds.load("selfevo_glyphs", data_dir=tmp_path, split=split)
        labels[split] = np.concatenate(
            [batch["label"] for batch in tfds.as_numpy(ds.batch(4096))]
        )
        counts = np.bincount(labels[split])
        assert counts[counts > 0].min() >= 20
    assert sum(len(np.unique(v)) for v in labels.values()) >= 1000
    assert not set(labels["train"]) & (set(labels["validation"]) | set(labels["test"]))
    assert not set(labels["validation"]) & set(labels["test"])
