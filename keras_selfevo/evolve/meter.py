"""Iambic pentameter, checked with the CMU Pronouncing Dictionary (offline, ``pronouncing``).

A line scans as iambic pentameter when its words can be read as ten syllables alternating
unstressed / stressed (da-DUM × 5). Each word's syllables and stresses come from the
dictionary; of its pronunciations the best-fitting one is used. A monosyllable may take
either stress (``"the"``, ``"day"``), and so may a syllable with secondary stress; primary
stress (``1``) must fall on an even position (2nd, 4th, ... syllable) and no stress (``0``)
on an odd one.

:func:`meter_reward` gives 1 to a perfect line and partial credit ``1 - (d + m) / 10`` to
others, where ``d`` is the distance from ten syllables and ``m`` the number of stress
mismatches of the best reading (at least 0); a word that is not in the dictionary makes
the line score 0.
"""

from __future__ import annotations

import collections
import functools
import re

import numpy as np

SYLLABLES = 10
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


@functools.cache
def _dictionary() -> dict[str, tuple[str, ...]]:
    import pronouncing

    pronouncing.init_cmu()
    patterns: dict[str, set[str]] = {}
    for word, phones in pronouncing.pronunciations:
        patterns.setdefault(word, set()).add(pronouncing.stresses(phones))
    return {word: tuple(sorted(p)) for word, p in patterns.items()}


def word_stresses(word: str) -> tuple[str, ...]:
    """The stress patterns of ``word`` (``"01"`` for *compare*); empty when unknown."""
    return _dictionary().get(word.lower(), ())


def words_of(line: str) -> list[str]:
    """The words of ``line`` (letters with inner apostrophes: *summer's*, *o'er*)."""
    return _WORD.findall(line)


def word_ngrams(line: str, n: int = 4) -> list[tuple[str, ...]]:
    """The word ``n``-grams of ``line``, in order (none when it has fewer than ``n`` words)."""
    words = words_of(line)
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def repeated_shares(lines: list[str], n: int = 4) -> np.ndarray:
    """For each line, the share of its word ``n``-grams that occur more than once in ``lines``.

    An ``n``-gram counts as repeated when it occurs again anywhere among the lines (another
    line, or twice in this one); a line without ``n``-grams has share 0. A set of lines whose
    shares are all 0 has distinct ``n``-grams only.
    """
    grams = [word_ngrams(line, n) for line in lines]
    counts = collections.Counter(gram for line_grams in grams for gram in line_grams)
    return np.asarray([sum(counts[gram] > 1 for gram in line_grams) / len(line_grams)
                       if line_grams else 0.0 for line_grams in grams], np.float32)


def _mismatches(pattern: str, start: int) -> int:
    """Stress mismatches of a word's ``pattern`` placed at syllable ``start``."""
    if len(pattern) == 1:
        return 0  # a monosyllable takes either stress
    wrong = 0
    for offset, stress in enumerate(pattern):
        stressed_position = (start + offset) % 2 == 1
        if stress == "1" and not stressed_position or stress == "0" and stressed_position:
            wrong += 1
    return wrong


def scansion(line: str) -> tuple[int, int] | None:
    """The best reading of ``line``: ``(syllables, mismatches)``; ``None`` if a word is unknown.

    Best means the smallest ``|syllables - 10| + mismatches`` over every choice of each
    word's pronunciations (a dynamic programme over syllable counts).
    """
    words = words_of(line)
    if not words:
        return None
    # Syllables so far → fewest mismatches.
    best = {0: 0}
    for word in words:
        patterns = word_stresses(word)
        if not patterns:
            return None
        step: dict[int, int] = {}
        for count, wrong in best.items():
            for pattern in patterns:
                total = count + len(pattern)
                cost = wrong + _mismatches(pattern, count)
                if cost < step.get(total, 1 << 30):
                    step[total] = cost
        best = step
    count, wrong = min(best.items(), key=lambda item: (abs(item[0] - SYLLABLES) + item[1],
                                                        abs(item[0] - SYLLABLES)))
    return count, wrong


def meter_reward(line: str) -> float:
    """1 for iambic pentameter, ``max(0, 1 - (|syllables - 10| + mismatches) / 10)`` else.

    0 when the line is empty or holds a word the dictionary does not know.
    """
    reading = scansion(line)
    if reading is None:
        return 0.0
    count, wrong = reading
    return max(0.0, 1.0 - (abs(count - SYLLABLES) + wrong) / SYLLABLES)


def is_pentameter(line: str) -> bool:
    """Whether ``line`` scans as ten syllables of da-DUM (``meter_reward`` of 1)."""
    return meter_reward(line) == 1.0
