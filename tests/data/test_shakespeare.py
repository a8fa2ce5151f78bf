import hashlib
import os

import pytest

import keras_selfevo as kse
from keras_selfevo.data import shakespeare


def _digest(folder):
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name.endswith(".tfrecord") or "tfrecord" in name:
                with open(os.path.join(root, name), "rb") as handle:
                    digest.update(name.encode() + handle.read())
    return digest.hexdigest()


def test_split_sizes_vocabulary_and_held_out_plays():
    sizes = {split: sum(len(t) for _, t in shakespeare.split_parts(split))
             for split in ("train", "validation", "test")}
    assert sizes["train"] == 4_086_417 and sizes["validation"] == 454_060
    assert len(shakespeare.vocabulary()) == 84
    train = {name for name, _ in shakespeare.split_parts("train")}
    validation = {name for name, _ in shakespeare.split_parts("validation")}
    test = {name for name, _ in shakespeare.split_parts("test")}
    assert test == set(shakespeare.HELD_OUT) and len(train) == 32
    assert train == validation and not train & test
    # Each training play's two parts are exactly the play, cut at 90%.
    whole = shakespeare.plays()
    parts = dict(shakespeare.split_parts("train"))
    for name, tail in shakespeare.split_parts("validation"):
        assert parts[name] + tail == whole[name]
        assert len(parts[name]) == int(len(whole[name]) * 0.9)


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="`split` must be"):
        shakespeare.split_parts("dev")


def test_two_builds_are_byte_identical_and_match_the_splits(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        kse.data.load("selfevo_shakespeare", split="test", data_dir=folder)
    assert _digest(first) == _digest(second) != hashlib.sha256().hexdigest()
    examples = list(kse.data.load("selfevo_shakespeare", split="test", data_dir=first)
                    .as_numpy_iterator())
    assert sorted(f"{e['genre'].decode()}/{e['slug'].decode()}" for e in examples) == sorted(
        shakespeare.HELD_OUT)
    macbeth = next(e for e in examples if e["slug"] == b"macbeth")
    assert macbeth["title"].decode().lower().startswith("macbeth")
    assert macbeth["text"].decode() == shakespeare.plays()["tragedies/macbeth"]
