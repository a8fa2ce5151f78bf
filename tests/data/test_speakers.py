import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.data import shakespeare, speakers, text

PLAY = "\n".join([
    '# A Play',
    '',
    '## ACT I',
    '',
    '### SCENE I. A room.',
    '',
    '_Enter ANNE and BEN_',
    '',
    '**ANNE**  ',
    'First line of Anne,  ',
    'second line of Anne.',
    '',
    '_Exit BEN_',
    '',
    'Anne goes on.',
    '',
    '**BEN**  ',
    'Ben speaks once.',
    '',
    '### SCENE II. Elsewhere.',
    '',
    'Nobody speaks here.',
    '',
    '**First Witch**  ',
    'When shall we three meet again?',
    '',
])


def test_a_speech_runs_to_the_next_speaker_or_heading_without_name_or_directions():
    assert speakers.speeches(PLAY) == [
        ("ANNE", "First line of Anne,  \nsecond line of Anne.\nAnne goes on."),
        ("BEN", "Ben speaks once."),
        ("First Witch", "When shall we three meet again?"),
    ]


def test_records_split_plays_like_the_language_model_corpus():
    train, test = speakers.speech_records("train"), speakers.speech_records("test")
    assert {play for play, _, _ in test} == set(shakespeare.HELD_OUT)
    assert len({play for play, _, _ in train}) == 32
    macbeth = [(who, speech) for play, who, speech in test if play == "tragedies/macbeth"]
    assert macbeth[0] == ("First Witch", "When shall we three meet again  \n"
                                         "In thunder, lightning, or in rain?")
    assert not any("**" in speech or speech.strip().startswith("_")
                   for _, _, speech in train + test)


def _speaker_of(row, pools):
    """(play, speaker index) of an encoded speech, by lookup in the pools."""
    found = [(play, s) for play, pool in pools.items() for s, ids in enumerate(pool)
             if (ids == row).all(axis=1).any()]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("shots", [1, 5])
def test_tasks_hold_n_speakers_of_one_held_out_play_and_disjoint_speeches(shots):
    pools = speakers.speaker_pools("test", length=128, min_speeches=10)
    tasks = kse.data.speaker_tasks("test", ways=5, shots=shots, queries=3, meta_batch_size=2,
                                   num_meta_batches=2, seed=7)
    elements = list(tasks)
    assert len(elements) == 2
    for (sx, sy), (qx, qy) in elements:
        assert sx.shape == (2, 5 * shots, 129) and qx.shape == (2, 15, 129)
        for t in range(2):
            assert (sx[t, :, 0] == text.BOS).numpy().all()
            support = [_speaker_of(row, pools) for row in sx[t].numpy()]
            query = [_speaker_of(row, pools) for row in qx[t].numpy()]
            assert len({play for play, _ in support + query}) == 1
            by_label = {}
            for who, label in zip(support + query, np.concatenate([sy[t], qy[t]])):
                assert by_label.setdefault(int(label), who) == who
            assert sorted(by_label) == list(range(5)) and len(set(by_label.values())) == 5
            rows = {row.tobytes() for row in np.concatenate([sx[t], qx[t]]).astype(np.int32)}
            assert len(rows) == 5 * (shots + 3)  # no speech twice in a task
    again = list(kse.data.speaker_tasks("test", ways=5, shots=shots, queries=3,
                                        meta_batch_size=2, num_meta_batches=2, seed=7))
    other = list(kse.data.speaker_tasks("test", ways=5, shots=shots, queries=3,
                                        meta_batch_size=2, num_meta_batches=2, seed=8))
    assert all((a[0][0].numpy() == b[0][0].numpy()).all() for a, b in zip(elements, again))
    assert not (elements[0][0][0].numpy() == other[0][0][0].numpy()).all()


def test_kept_speakers_have_enough_long_speeches():
    pools = speakers.speaker_pools("train", length=128, min_speeches=10)
    counts = {}
    for play, speaker, speech in speakers.speech_records("train"):
        if len(speech) >= 128:
            counts[(play, speaker)] = counts.get((play, speaker), 0) + 1
    kept = sum(len(pool) for pool in pools.values())
    assert kept == sum(n >= 10 for n in counts.values())
    assert all(len(ids) >= 10 for pool in pools.values() for ids in pool)
    assert len(pools) == 32


@pytest.mark.parametrize("kwargs, message", [
    (dict(ways=1), "`ways` must be an integer ≥ 2"),
    (dict(ways=40), "`ways`=40: no play of the 'test' split"),
    (dict(shots=8, queries=5), "`min_speeches` must be an integer ≥ 13"),
    (dict(split="dev"), "`split` must be one of"),
    (dict(length=0), "`length` must be a positive integer"),
])
def test_bad_task_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kse.data.speaker_tasks(**{"split": "test", **kwargs})


def test_the_builder_yields_every_record(tmp_path):
    records = list(kse.data.load("selfevo_speakers", split="test", data_dir=tmp_path)
                   .as_numpy_iterator())
    want = speakers.speech_records("test")
    assert len(records) == len(want)
    got = sorted((r["play"].decode(), r["speaker"].decode(), r["speech"].decode())
                 for r in records)
    assert got == sorted(want)
