"""SelfEvolvingModel.fit vs plain keras.Model.fit on the same CNN: steps/s ratio.

Network (seed 001's CNN): Conv2D 32 3x3 → MaxPool 2 → Flatten → Dense 64 → heads
{"self": Dense 784 sigmoid → 28x28x1, "policy": Dense 10}. Batch 64, the same in-memory data.
Reference: keras.Model with the same two heads, compiled with a single BCE loss on "self"
and Keras's built-in train_step. Ours: SelfEvolvingModel with alpha=0.5 and AWR weighting,
so both loss terms, the reward statistics and the input checks are included.
After a warm-up, repeats are taken in pairs in ABBA order (reference, ours, ours,
reference, ...) and the ratio is the median of the per-pair ratios: this machine's speed
drifts by tens of percent over a minute, and pairing cancels the drift. Each repeat is one
``fit`` call of several epochs timed by a callback, the first epoch left out, so per-call
set-up (iterator creation, callbacks) is not counted: it is paid once per training.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import parse_args, report  # noqa: E402

import keras_selfevo as kse  # noqa: E402

BATCH = 64


def build(model_class):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    recon = keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784, activation="sigmoid")(h))
    policy = keras.layers.Dense(10, name="policy")(h)
    return model_class(inputs, {"self": recon, "policy": policy})


def datasets(steps):
    rng = np.random.default_rng(0)
    n = BATCH * 16
    x = rng.uniform(size=(n, 28, 28, 1)).astype(np.float32)
    policy = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    reward = rng.uniform(size=(n,)).astype(np.float32)

    def make(targets):
        return tf.data.Dataset.from_tensor_slices((x, targets)).batch(BATCH).cache().repeat()

    return make({"self": x}), make({"policy": policy, "reward": reward})


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def timed_fit(model, dataset, steps, epochs=4):
    """Steps/s of one fit call, from its epochs after the first."""
    timer = EpochTimer()
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return steps / float(np.median(timer.seconds[1:]))


def main():
    args = parse_args(__doc__)
    steps = 10 if args.quick else 40
    repeats = 4 if args.quick else max(args.repeats, 12)
    plain_data, ours_data = datasets(steps)
    rows = []
    for jit in (False, True):
        plain = build(keras.Model)
        plain.compile(optimizer="adam", loss={"self": keras.losses.BinaryCrossentropy()},
                      jit_compile=jit)
        ours = build(kse.SelfEvolvingModel)
        ours.compile(optimizer="adam", alpha=0.5, reward_weighting="awr", jit_compile=jit)
        for model, data in ((plain, plain_data), (ours, ours_data)):
            timed_fit(model, data, steps)  # warm-up: tracing and compilation
        plain_rates, our_rates = [], []
        for repeat in range(repeats):
            order = [(plain, plain_data, plain_rates), (ours, ours_data, our_rates)]
            for model, data, rates in order[:: 1 if repeat % 2 == 0 else -1]:
                rates.append(timed_fit(model, data, steps))
        ratios = np.array(our_rates) / np.array(plain_rates)
        rows.append({
            "jit_compile": jit,
            "keras.Model.fit steps/s": float(np.median(plain_rates)),
            "SelfEvolvingModel.fit steps/s": float(np.median(our_rates)),
            "ratio, median of pairs (goal >= 0.97)": float(np.median(ratios)),
            "ratio spread (min-max)": f"{ratios.min():.3f}-{ratios.max():.3f}",
        })
    report("fit_overhead", rows, batch=BATCH, steps_per_epoch=steps, repeats=repeats)


if __name__ == "__main__":
    main()
