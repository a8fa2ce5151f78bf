"""Targets that do not fit the model are a ValueError naming them, before any update."""

import numpy as np
import pytest
import tensorflow as tf

from tests.training.helpers import build_tiny_model, make_batch


def _compiled():
    model = build_tiny_model()
    model.compile(alpha=0.5, reward_weighting="normalized")
    return model


def test_string_rewards_name_the_key():
    model = _compiled()
    before = [w.copy() for w in model.get_weights()]
    x, y = make_batch()
    y["reward"] = np.array([str(r) for r in y["reward"]])
    with pytest.raises(ValueError, match=r'`y\["reward"\]` must hold numbers'):
        model.fit(x, y, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(ValueError, match=r'`y\["reward"\]` must hold numbers'):
        model.fit(ds, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_policy_target_of_another_width_names_both_shapes():
    model = _compiled()
    x, y = make_batch()
    y["policy"] = np.zeros((len(x), 5), np.float32)
    with pytest.raises(ValueError, match=r'`y\["policy"\]` has shape \(.*5\) but the "policy" '
                                         r"output has shape \(None, 3\)"):
        model.fit(x, y, verbose=0)
