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
        assert rewards.is_correct_sum(text_corpora.arithmetic_line(rng))


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
