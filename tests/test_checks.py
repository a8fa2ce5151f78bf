"""The shared argument checks: what they accept, what they return, how they refuse."""

import numpy as np
import pytest

from keras_selfevo._internal import checks


@pytest.mark.parametrize("check,args", [
    (checks.positive_int, ()),
    (checks.non_negative_int, ()),
    (checks.int_at_least, (1,)),
])
def test_integer_checks_accept_numpy_integers_and_return_python_ints(check, args):
    for value in (np.int64(3), np.int32(3), np.uint8(3), 3):
        result = check(value, "steps", *args)
        assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 2.0, np.float32(2.0), "2", 0, -1])
def test_positive_int_refuses_what_is_not_a_positive_integer(value):
    with pytest.raises(ValueError, match=r"`steps` must be a positive integer, got"):
        checks.positive_int(value, "steps")


def test_allow_none_passes_none_through():
    assert checks.positive_int(None, "version", allow_none=True) is None
    with pytest.raises(ValueError, match="`version` must be None or a positive integer"):
        checks.positive_int(np.int64(0), "version", allow_none=True)
