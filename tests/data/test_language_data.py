"""Few-shot text tasks: one text per task, disjoint support and query regions, seeded."""

import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.data import shakespeare

REGION = 40


def position_streams(lengths):
    """Streams whose every token is its own global position, so a window tells where it was cut."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [np.arange(start, start + length, dtype=np.int32)
            for start, length in zip(starts, lengths)], starts


def test_tasks_take_support_and_query_from_two_regions_of_one_text():
    lengths = [130, 400, 250]
    streams, starts = position_streams(lengths)
    tasks = kse.data.text_tasks(streams, shots=3, queries=4, window=10, meta_batch_size=16,
                                region=REGION, seed=3, num_meta_batches=4)
    seen_streams = set()
    for (sx, sy), (qx, qy) in tasks.as_numpy_iterator():
        assert sx.shape == (16, 3, 10) and qx.shape == (16, 4, 10)
        assert sx.dtype == np.int32 and sy.dtype == np.int32
        np.testing.assert_array_equal(sy, sx + 1)  # the next token of each position
        np.testing.assert_array_equal(qy, qx + 1)
        for t in range(16):
            which = np.searchsorted(starts, sx[t, 0, 0], side="right") - 1
            seen_streams.add(int(which))
            local_support = np.concatenate([sx[t], sy[t]], axis=1) - starts[which]
            local_query = np.concatenate([qx[t], qy[t]], axis=1) - starts[which]
            # Every token of the task (inputs and targets) lies inside the same text ...
            assert local_support.min() >= 0 and local_query.min() >= 0
            assert max(local_support.max(), local_query.max()) < lengths[which]
            # ... within one region for the support and another for the query.
            support_regions = set((local_support // REGION).ravel())
            query_regions = set((local_query // REGION).ravel())
            assert len(support_regions) == 1 and len(query_regions) == 1
            assert support_regions != query_regions
            assert not set(local_support.ravel()) & set(local_query.ravel())
    assert seen_streams == {0, 1, 2}


def test_tasks_are_seeded_and_resume_where_they_stopped():
    streams, _ = position_streams([500, 600])

    def read(seed, first=0, count=5):
        tasks = kse.data.text_tasks(streams, shots=2, queries=2, window=8, meta_batch_size=4,
                                    region=REGION, seed=seed, num_meta_batches=count,
                                    first_meta_batch=first)
        return [np.concatenate([a.ravel() for a in (e[0][0], e[1][0])])
                for e in tasks.as_numpy_iterator()]

    whole = read(0)
    np.testing.assert_array_equal(np.stack(whole), np.stack(read(0)))
    np.testing.assert_array_equal(np.stack(whole[3:]), np.stack(read(0, first=3, count=2)))
    assert not np.array_equal(np.stack(whole), np.stack(read(1)))


def test_held_out_plays_never_reach_training_tasks():
    train = kse.data.shakespeare_streams("train")
    test = kse.data.shakespeare_streams("test")
    assert set(test) == set(shakespeare.HELD_OUT)
    assert not set(train) & set(test) and len(train) == 32
    assert sum(map(len, train.values())) == 4_086_417


@pytest.mark.parametrize("kwargs, message", [
    (dict(region=10), "`region`=10 must be at least `window` \\+ 1"),
    (dict(shots=0), "`shots` must be a positive integer"),
    (dict(window=-1), "`window` must be a positive integer"),
])
def test_bad_task_arguments(kwargs, message):
    streams, _ = position_streams([500])
    with pytest.raises(ValueError, match=message):
        kse.data.text_tasks(streams, **{"window": 10, **kwargs})


def test_a_text_shorter_than_two_regions_is_named():
    streams, _ = position_streams([500, 70])
    with pytest.raises(ValueError, match=r"`streams`\[1\] holds 70 tokens"):
        kse.data.text_tasks(streams, window=10, region=REGION)
    with pytest.raises(ValueError, match="`streams` is empty"):
        kse.data.text_tasks([], window=10)
