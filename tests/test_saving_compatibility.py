"""``.keras`` files written by an earlier version of the package still load and predict the same."""

import pathlib

import keras
import numpy as np
import pytest

import keras_selfevo as kse

SAVED = pathlib.Path(__file__).parent / "fixtures" / "saved_by_0_1_0"


@pytest.fixture(scope="module")
def expected():
    with np.load(SAVED / "expected.npz") as data:
        return dict(data)


def test_a_compiled_self_evolving_cnn_loads_with_its_settings(expected):
    model = kse.zoo.load_checkpoint(str(SAVED / "mnist_cnn.keras"))
    out = model.predict(expected["mnist_cnn/x"], verbose=0)
    np.testing.assert_allclose(out["policy"], expected["mnist_cnn/policy"], rtol=1e-6)
    np.testing.assert_allclose(out["self"], expected["mnist_cnn/self"], rtol=1e-6)
    assert isinstance(model.alpha, kse.training.CosineAlpha)
    assert isinstance(model.reward_weighting, kse.losses.AWRWeighting)
    assert model.reward_weighting.beta == 0.5
    assert model.masked_self_loss and model.kl_beta == 0.1
    assert isinstance(model.self_loss, kse.losses.BinaryCrossentropySelfLoss)
    assert model.reinforce_loss.name == "squared"
    assert model.optimizer.iterations.numpy() == 1  # the optimizer state came back


@pytest.mark.parametrize("name, kind", [("gpt", kse.losses.NextTokenSelfLoss),
                                        ("char_rnn", kse.losses.BinaryCrossentropySelfLoss)])
def test_language_models_load_with_their_self_loss(expected, name, kind):
    model = kse.zoo.load_checkpoint(str(SAVED / f"{name}.keras"))
    out = model.predict(expected[f"{name}/x"], verbose=0)
    np.testing.assert_allclose(out["self"], expected[f"{name}/self"], rtol=1e-5, atol=1e-6)
    assert isinstance(model.self_loss, kind) and model.self_loss.from_logits
    if kind is kse.losses.NextTokenSelfLoss:
        assert model.self_loss.ignore_class == kse.data.text.PAD


def test_a_meta_sgd_learner_adapts_as_it_did(expected):
    learner = keras.saving.load_model(SAVED / "metasgd.keras")
    x = expected["metasgd/x"]
    adapted = learner.adapt(x, np.sin(x), steps=2)(x).numpy()
    np.testing.assert_allclose(adapted, expected["metasgd/adapted"], rtol=1e-5, atol=1e-6)
