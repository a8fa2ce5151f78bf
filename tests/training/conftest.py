import pytest

from tests.training.helpers import build_tiny_model


@pytest.fixture
def tiny_model():
    return build_tiny_model()
