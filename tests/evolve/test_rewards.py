import numpy as np
import pytest

from keras_selfevo.evolve import rewards


@pytest.mark.parametrize("line, reward", [
    ("()", 1.0), ("[()]()", 1.0), ("", 0.0),
    ("((", 0.5 * (1 - 2 / 2)), ("(()", 0.5 * (1 - 1 / 3)),   # valid prefix, brackets open
    ("(]", 0.5 * 1 / 2), (")(", 0.0), ("([)]", 0.5 * 2 / 4),  # breaks at a position
])
def test_dyck_reward(line, reward):
    assert rewards.dyck_reward(line) == pytest.approx(reward)
    assert rewards.is_dyck(line) == (reward == 1.0)


@pytest.mark.parametrize("line, reward", [
    ("12+7=19", 1.0), ("99+99=198", 1.0), ("0+0=0", 1.0),
    ("12+7=18", 0.3 + 0.7 * 1 / 2),   # tens digit right
    ("12+7=29", 0.3 + 0.7 * 1 / 2),   # units digit right
    ("12+7=5", 0.3),                  # " 5" vs "19": nothing matches
    ("12+7=", 0.0), ("12+=7", 0.0), ("1+2=3=3", 0.0), ("abc", 0.0),
])
def test_arithmetic_reward(line, reward):
    assert rewards.arithmetic_reward(line) == pytest.approx(reward)
    assert rewards.is_correct_sum(line) == (reward == 1.0)


def test_score_by_name():
    np.testing.assert_allclose(rewards.score(["()", "(("], "dyck"), [1.0, 0.0])
    with pytest.raises(ValueError, match="`reward` must be one of"):
        rewards.score(["()"], "python")
