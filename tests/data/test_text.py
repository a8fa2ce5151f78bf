import numpy as np
import pytest

from keras_selfevo import data
from keras_selfevo.data import text, text_corpora
from keras_selfevo.evolve import rewards


def test_encode_decode_round_trip_and_errors():
    ids = text.encode(["()", "[()]"], "()[]", length=7)
    assert ids.tolist() == [[1, 3, 4, 2, 0, 0, 0], [1, 5, 3, 4, 6, 2, 0]]
    assert text.decode(ids, "()[]") == ["()", "[()]"]
    with pytest.raises(ValueError, match="outside `vocabulary`"):
        text.encode(["(x)"], "()[]")
    with pytest.raises(ValueError, match="needs 6 tokens; `length` is 4"):
        text.encode(["[()]"], "()[]", length=4)


def test_generators_make_valid_strings():
    rng = np.random.default_rng(0)
    for _ in range(300):
        line = text_corpora.dyck_string(rng, max_length=24, max_depth=4)
        assert rewards.is_dyck(line) and len(line) <= 24
        depth = max(np.cumsum([1 if c in "([" else -1 for c in line]))
        assert depth <= 4


def test_builder_is_local_and_deterministic(tmp_path):
    first = data.load("selfevo_text/arithmetic", split="validation", data_dir=str(tmp_path / "a"))
    second = data.load("selfevo_text/arithmetic", split="validation",
                       data_dir=str(tmp_path / "b"))
    a = [e["text"] for e in first.as_numpy_iterator()]
    b = [e["text"] for e in second.as_numpy_iterator()]
    assert len(a) == 1000 and sorted(a) == sorted(b)
    assert all(rewards.is_correct_sum(t.decode()) for t in a)


def test_language_model_dataset_shifts_by_one():
    (x, y), = data.text.language_model_dataset(["()"], "()[]", length=4).as_numpy_iterator()
    assert x.tolist() == [1, 3, 4, 2]
    assert y["self"].tolist() == [3, 4, 2, 0] and y["self"].dtype == np.int32


def _texts(name, split, data_dir):
    return [e["text"].decode() for e in data.load(name, split=split,
                                                  data_dir=data_dir).as_numpy_iterator()]


@pytest.mark.parametrize("config", ["arithmetic", "dyck"])
def test_splits_are_disjoint_and_hold_each_string_once(tmp_path, config):
    splits = {s: _texts(f"selfevo_text/{config}", s, str(tmp_path))
              for s in ("train", "validation", "test")}
    sizes = {"arithmetic": (8000, 1000, 1000), "dyck": (20000, 1000, 1000)}[config]
    assert tuple(len(v) for v in splits.values()) == sizes
    for lines in splits.values():
        assert len(set(lines)) == len(lines)
    assert not set(splits["train"]) & (set(splits["validation"]) | set(splits["test"]))
    assert not set(splits["validation"]) & set(splits["test"])
    check = rewards.is_correct_sum if config == "arithmetic" else rewards.is_dyck
    assert all(check(line) for lines in splits.values() for line in lines)
    if config == "arithmetic":  # every pair (a, b) of [0, 99]² exactly once
        pairs = {tuple(int(v) for v in line.split("=")[0].split("+"))
                 for lines in splits.values() for line in lines}
        assert len(pairs) == 10000

