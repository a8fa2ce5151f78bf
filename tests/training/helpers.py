"""Tiny models and data shared by the SelfEvolvingModel tests."""

import keras
import numpy as np

import keras_selfevo as kse

FEATURES, ACTIONS = 6, 3


def build_tiny_model(seed: int = 0, single_output: bool = False) -> kse.SelfEvolvingModel:
    """Input(6) → Dense(8, tanh) → {"self": Dense(6, sigmoid), "policy": Dense(3)}."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,), name="x")
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    if single_output:
        out = keras.layers.Dense(FEATURES, activation="sigmoid")(hidden)
        return kse.SelfEvolvingModel(inputs, out)
    outputs = {
        "self": keras.layers.Dense(FEATURES, activation="sigmoid",
                                   name="self")(hidden),
        "policy": keras.layers.Dense(ACTIONS, name="policy")(hidden),
    }
    return kse.SelfEvolvingModel(inputs, outputs)


def make_batch(n: int = 16, seed: int = 0, actions: bool = False, self_target: bool = False):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, FEATURES)).astype(np.float32)
    y = {
        "policy": rng.normal(size=(n, ACTIONS)).astype(np.float32),
        "reward": rng.normal(size=(n,)).astype(np.float32),
    }
    if actions:
        y["action"] = rng.uniform(0.5, 1.5, size=(n, 1)).astype(np.float32)
    if self_target:
        y["self"] = rng.uniform(size=(n, FEATURES)).astype(np.float32)
    return x, y
