"""Every layer of the package reloads from a `.keras` file in one fresh process.

The per-layer tests run ``testing.run_layer_test`` in this process only; this test saves a
model around each layer and reloads them all in one new process (one TensorFlow import,
``testing.run_fresh_reload_test``), where only the package's registrations can rebuild them:
outputs must be identical (the weights are moved away from their initial values first).
"""

import keras
import numpy as np

from keras_selfevo import layers, testing

RNG = np.random.default_rng(0)
CASES = {
    "conv_block": (layers.ConvBlock, {"filters": 4},
                   RNG.uniform(size=(2, 12, 12, 3)).astype(np.float32)),
    "fused_batch_norm": (layers.FusedBatchNormalization, {"momentum": 0.5},
                         RNG.normal(size=(2, 5, 5, 3)).astype(np.float32)),
    "random_masking": (layers.RandomMasking, {"rate": 0.3, "mask_value": 0.5, "seed": 7},
                       RNG.uniform(size=(3, 28, 28, 1)).astype(np.float32)),
    "recurrent_block": (layers.RecurrentBlock,
                        {"vocab_size": 9, "embed_dim": 4, "units": 5, "num_layers": 2,
                         "cell": "gru"},
                        RNG.integers(0, 9, size=(3, 7)).astype(np.int32)),
    "pseudo_label": (layers.PseudoLabel, {"threshold": 0.4},
                     RNG.dirichlet(np.ones(5), size=6).astype(np.float32)),
}


def test_every_layer_reloads_in_one_fresh_process():
    models = []
    for name, (layer_cls, kwargs, x) in CASES.items():
        inputs = keras.Input(shape=x.shape[1:], dtype=x.dtype)
        model = keras.Model(inputs, layer_cls(**kwargs)(inputs), name=name)
        for weight in model.weights:  # away from the initial values, which a bad load also gives
            weight.assign(np.abs(keras.ops.convert_to_numpy(weight))
                          + RNG.uniform(0.1, 0.5, weight.shape).astype(weight.dtype))
        models.append((model, x))
    testing.run_fresh_reload_test(models)
