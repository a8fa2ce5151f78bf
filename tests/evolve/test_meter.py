"""The iambic-pentameter checker on known lines, and the meter environment's wiring."""

import itertools

import numpy as np
import pytest

import keras_selfevo as kse
from keras_selfevo.data import text
from keras_selfevo.evolve import MeterEnvironment, meter


@pytest.mark.parametrize("line, syllables, mismatches", [
    ("Shall I compare thee to a summer's day?", 10, 0),
    ("So foul and fair a day I have not seen.", 10, 0),
    ("But soft, what light through yonder window breaks?", 10, 0),
    # Eleven syllables (a feminine ending): one off.
    ("To be, or not to be, that is the question:", 11, 0),
    # Nine syllables; the two-syllable words fall on da-DUM.
    ("I went to the store and bought some milk.", 9, 0),
    # com-MIT-tee, to-MOR-row, af-ter-NOON, dis-CUSS, BUD-get: far from ten.
    ("The committee will meet tomorrow afternoon to discuss the budget.", 18, 7),
])
def test_scansion_of_known_lines(line, syllables, mismatches):
    assert meter.scansion(line) == (syllables, mismatches)
    expected = max(0.0, 1 - (abs(syllables - 10) + mismatches) / 10)
    assert meter.meter_reward(line) == pytest.approx(expected)


# CMU stress patterns (0 unstressed, 1 primary) of the words below, as the dictionary lists
# them, and a reading by hand: every choice of pronunciation, a syllable at an even position
# should be unstressed and one at an odd position stressed, a monosyllable takes either.
CMU = {"thou": ("1",), "art": ("1",), "more": ("1",), "lovely": ("10",), "and": ("0", "1"),
       "temperate": ("10", "100"), "summer": ("10",), "shall": ("1",), "i": ("1",),
       "compare": ("01",), "thee": ("1",), "to": ("0", "1"), "a": ("0", "1"), "day": ("1",),
       "be": ("0", "1"), "or": ("0", "1"), "not": ("1",), "that": ("0", "1"),
       "is": ("0", "1"), "the": ("0", "1"), "question": ("10",)}


def _by_hand(line):
    words = [w.lower() for w in meter.words_of(line)]
    readings = []
    for choice in itertools.product(*(CMU[w] for w in words)):
        position, wrong = 0, 0
        for pattern in choice:
            if len(pattern) > 1:
                wrong += sum((stress == "1") != (index % 2 == 1)
                             for index, stress in enumerate(pattern, start=position))
            position += len(pattern)
        readings.append((abs(position - 10) + wrong, abs(position - 10), position, wrong))
    _, _, syllables, wrong = min(readings)
    return syllables, wrong, max(0.0, 1 - (abs(syllables - 10) + wrong) / 10)


@pytest.mark.parametrize("line", [
    "Thou art more lovely and more temperate:",   # TEM-per-ate: 10 syllables, one mismatch
    "Summer shall I compare thee to a day",       # SUM-mer first: two mismatches
    "To be, or not to be, that is the question:",  # eleven syllables
    "Shall I compare thee to a day",              # nine syllables
])
def test_partial_scores_equal_a_reading_by_hand(line):
    for word in meter.words_of(line):
        assert meter.word_stresses(word) == CMU[word.lower()], word
    syllables, wrong, reward = _by_hand(line)
    assert meter.scansion(line) == (syllables, wrong)
    assert meter.meter_reward(line) == pytest.approx(reward)


def test_rewards_perfect_partial_and_zero():
    assert meter.meter_reward("Shall I compare thee to a summer's day?") == 1.0
    assert meter.is_pentameter("Rough winds do shake the darling buds of May,")
    prose = "The committee will meet tomorrow afternoon to discuss the budget."
    assert meter.meter_reward(prose) < meter.meter_reward("To be, or not to be, that is the "
                                                          "question:") < 1.0
    assert meter.meter_reward("Shall I compare thee to a summer's dayz?") == 0.0  # unknown
    assert meter.meter_reward("") == 0.0 and meter.meter_reward("... !") == 0.0


def test_words_and_stresses():
    assert meter.words_of("O'er the hills, summer's day!") == ["O'er", "the", "hills", "summer's",
                                                             "day"]
    assert meter.word_stresses("compare") == ("01",)
    assert meter.word_stresses("Qwzx") == ()


@pytest.fixture(scope="module")
def environment():
    vocabulary = "abcdefghijklmnopqrstuvwxyz ,.\n"
    passage = ("shall i compare thee to a summers day  \nthou art more lovely and more "
               "temperate  \nrough winds do shake the darling buds of may  \n") * 20
    ids = text.encode_stream(passage, vocabulary)
    return MeterEnvironment(ids, ids, vocabulary, prompt_length=8, length=24,
                            corpus_fraction=0.5, validation_chars=200, eval_window=16)


def test_environment_rows_lines_and_rewards(environment):
    observations = environment.observe(6, seed=0)
    assert observations.inputs.shape == (6, 8)
    prompts = [text.decode_stream(p, environment.vocabulary) for p in observations.inputs]
    assert all(p.endswith("  \n") for p in prompts)
    # Actions are prompt + written characters; the line stops at the first newline.
    line = text.encode_stream("so foul and fair  \nxyz abcdefg", environment.vocabulary)
    assert len(line) == 30
    actions = np.concatenate([observations.inputs[:1], line[None, :24]], axis=1)
    assert environment.lines(actions) == ["so foul and fair"]
    rewards = environment.reward(observations, actions)
    assert rewards.shape == (1,) and 0 < rewards[0] < 1
    y = environment.targets(observations, actions[:, :-1], actions)
    assert y["policy"].shape == (1, 31, text.vocab_size(environment.vocabulary))
    np.testing.assert_array_equal(y["self"], actions[:, 1:])
    x, mixed = environment.mix_rows(actions[:, :-1], {**y, "reward": rewards}, seed=0)
    assert len(x) == 2 and mixed["reward"][1] == 0.0  # corpus windows weigh nothing
    assert environment.describe(np.repeat(actions, 2, axis=0)) == {"distinct_4grams": 0.5}


def _repeated_shares_by_hand(lines):
    """Each line's share of 4-grams found again among the lines, counted one by one."""
    grams = [[tuple(w[i:i + 4]) for i in range(len(w) - 3)]
             for w in (meter.words_of(line) for line in lines)]
    shares = []
    for index, own in enumerate(grams):
        repeated = 0
        for gram in own:
            elsewhere = any(gram in other for j, other in enumerate(grams) if j != index)
            twice = own.count(gram) > 1
            repeated += elsewhere or twice
        shares.append(repeated / len(own) if own else 0.0)
    return shares


def test_repeated_shares_match_a_count_by_hand():
    lines = ["shall i compare thee to a summers day", "shall i compare thee to the sea",
             "rough winds do shake", "so foul and fair so foul and fair a day", "", "o no"]
    np.testing.assert_allclose(meter.repeated_shares(lines), _repeated_shares_by_hand(lines))
    assert meter.repeated_shares(lines)[1] == pytest.approx(2 / 4)
    assert meter.repeated_shares(lines)[2] == 0.0  # its one 4-gram occurs once


def _with_novelty(environment, novelty, length):
    """The fixture's environment with ``novelty``, writing ``length`` characters."""
    return MeterEnvironment(environment.train_ids, environment.full_validation_ids,
                            environment.vocabulary, prompt_length=8, length=length,
                            novelty=novelty)


def _actions(environment, observations, written):
    """Each prompt followed by its ``written`` text, padded with spaces to the length."""
    return np.stack([np.concatenate([prompt, text.encode_stream(
        line.ljust(environment.length, " ")[:environment.length], environment.vocabulary)])
        for prompt, line in zip(observations.inputs, written)])


@pytest.mark.parametrize("novelty", [0.5, 1.0])
def test_novelty_discounts_repeated_lines(environment, novelty):
    observations = environment.observe(3, seed=0)
    written = ["so foul and fair a day  \n", "so foul and fair a day  \n",
               "rough winds do shake the buds  \n"]
    actions = _actions(environment, observations, written)
    plain = environment.reward(observations, actions)
    discounted = _with_novelty(environment, novelty, 24).reward(observations, actions)
    shares = np.array(_repeated_shares_by_hand(environment.lines(actions)))
    np.testing.assert_allclose(discounted, plain * (1 - novelty * shares), rtol=1e-6)
    assert plain[0] > 0 and discounted[0] < plain[0] and discounted[2] == plain[2]


def test_novelty_logs_perfect_lines_however_worded(environment):
    novel = _with_novelty(environment, 1.0, 48)
    observations = novel.observe(3, seed=0)
    written = ["so foul and fair a day i have not seen  \n"] * 2 + ["rough winds  \n"]
    actions = _actions(novel, observations, written)
    lines = novel.lines(actions)
    perfect = [meter.meter_reward(line) == 1.0 for line in lines]
    assert perfect == [True, True, False]
    # The repeated perfect lines are paid nothing, and logged as perfect all the same.
    np.testing.assert_array_equal(novel.reward(observations, actions)[:2], [0.0, 0.0])
    assert novel.describe(actions)["perfect_lines"] == pytest.approx(2 / 3)
    assert "perfect_lines" not in environment.describe(actions)


def test_environment_runs_a_generation_with_a_gpt(environment):
    model = kse.zoo.build("gpt", vocabulary=environment.vocabulary, num_layers=1, num_heads=2,
                          width=16, block_size=32, seed=0)
    model.compile(optimizer="adam", alpha=0.5, reward_weighting="grpo", kl_beta=0.1)
    history = kse.evolve.SelfEvolution(model, environment, samples_per_generation=4,
                                       samples_per_observation=2, batch_size=4).run(1, verbose=0)
    assert {"validation_nats_per_char", "distinct_4grams", "kl"} <= set(history[1])
    assert np.isfinite(history[1]["validation_nats_per_char"])


def test_bad_arguments(environment):
    vocabulary = environment.vocabulary
    prose = text.encode_stream("no verse here at all.\n" * 5, vocabulary)
    with pytest.raises(ValueError, match="no verse line break"):
        MeterEnvironment(prose, prose, vocabulary)
    with pytest.raises(ValueError, match="`corpus_fraction`"):
        MeterEnvironment(prose, prose, vocabulary, corpus_fraction=1.0)
    verse = environment.train_ids
    with pytest.raises(ValueError, match="`novelty`"):
        MeterEnvironment(verse, verse, vocabulary, novelty=1.5)
