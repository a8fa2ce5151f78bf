"""SelfEvolvingModel.fit vs plain keras.Model.fit on the same CNN: steps/s ratio.

Network (seed 001's CNN): Conv2D 32 3x3 → MaxPool 2 → Flatten → Dense 64 → outputs, batch
64, the same in-memory data, in two forms:

- "one output" (the seed's model): Dense 784 sigmoid → 28x28x1 is the only output. The
  reference trains it with a single BCE loss against the input; ours uses it for both terms
  (BCE against the input, reward-weighted squared error against a target image), so the
  two runs update exactly the same weights and the ratio is the cost of the second term.
- "two heads": {"self": the same reconstruction, "policy": Dense 10}. The reference has the
  same two heads but only the BCE loss on "self", so it never updates the policy head; ours
  also trains the policy head (its Adam update is in our time and not in the reference's).

Reference: keras.Model compiled with a single BCE loss and Keras's built-in train_step.
Ours: SelfEvolvingModel with alpha=0.5 and AWR weighting, so both loss terms, the reward
statistics and the input checks are included.

Two measures:

- **Wall clock** (default). After a warm-up, rounds of three ``fit`` calls — reference,
  ours, and a second, identical reference model ("A/A") — alternate their order (ABC, CBA,
  ...); ratios are medians over the rounds. Each call is several epochs timed by a callback,
  the first epoch left out, so per-call set-up is not counted. The A/A ratio (identical
  work, ideally 1) shows how far this machine's drift moves the figure: when it is off by
  more than the overhead being measured, the wall-clock ratio cannot resolve it.
- **Instructions** (``--instructions``; needs ``valgrind``): each form runs in a child
  process under callgrind with 1 TensorFlow thread, counting the CPU instructions of one
  ``fit`` call of the same number of steps for the reference and ours, twice each. The
  ratio reference/ours is the speed ratio if instructions cost the same on both sides; it
  does not drift (the two reference counts agree to a fraction of a percent), but it does
  not see memory stalls. Without XLA only (compiling under valgrind takes too long); about
  3 minutes per form.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if os.environ.get("KSE_BENCH_THREADS"):  # one thread: instruction counts do not depend on
    threads = int(os.environ["KSE_BENCH_THREADS"])  # how long workers spin waiting
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)

from common import parse_args, report  # noqa: E402

import keras_selfevo as kse  # noqa: E402

BATCH = 64


def build(model_class, heads):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    recon = keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784, activation="sigmoid")(h))
    if heads == "one output":
        return model_class(inputs, recon)
    policy = keras.layers.Dense(10, name="policy")(h)
    return model_class(inputs, {"self": recon, "policy": policy})


def datasets(heads):
    """(reference data, our data) for one form of the network."""
    rng = np.random.default_rng(0)
    n = BATCH * 16
    x = rng.uniform(size=(n, 28, 28, 1)).astype(np.float32)
    reward = rng.uniform(size=(n,)).astype(np.float32)
    if heads == "one output":
        plain_targets = x
        policy = rng.uniform(size=(n, 28, 28, 1)).astype(np.float32)
    else:
        plain_targets = {"self": x}
        policy = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]

    def make(targets):
        return tf.data.Dataset.from_tensor_slices((x, targets)).batch(BATCH).cache().repeat()

    return make(plain_targets), make({"policy": policy, "reward": reward})


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


FORMS = [(heads, jit) for heads in ("one output", "two heads") for jit in (False, True)]


def compiled_models(heads, jit):
    """(reference, ours, reference data, our data) for one form of the network."""
    plain_data, ours_data = datasets(heads)
    plain = build(keras.Model, heads)
    bce = keras.losses.BinaryCrossentropy()
    plain.compile(optimizer="adam", loss=bce if heads == "one output" else {"self": bce},
                  jit_compile=jit)
    ours = build(kse.SelfEvolvingModel, heads)
    ours.compile(optimizer="adam", alpha=0.5, reward_weighting="awr", jit_compile=jit)
    return plain, ours, plain_data, ours_data


def wall_clock_row(heads, jit, steps, repeats):
    plain, ours, plain_data, ours_data = compiled_models(heads, jit)
    twin = build(keras.Model, heads)
    twin.compile(optimizer="adam", loss=plain.loss, jit_compile=jit)
    runs = {"plain": (plain, plain_data), "ours": (ours, ours_data), "twin": (twin, plain_data)}
    for model, data in runs.values():
        timed_fit(model, data, steps)  # warm-up: tracing and compilation
    rates = {name: [] for name in runs}
    for repeat in range(repeats):
        for name in list(runs)[:: 1 if repeat % 2 == 0 else -1]:
            rates[name].append(timed_fit(*runs[name], steps))
    plain_rates, our_rates, twin_rates = (np.array(rates[k]) for k in ("plain", "ours", "twin"))
    ratios, control = our_rates / plain_rates, twin_rates / plain_rates
    return {
        "network": heads,
        "jit_compile": jit,
        "keras.Model.fit steps/s": float(np.median(plain_rates)),
        "SelfEvolvingModel.fit steps/s": float(np.median(our_rates)),
        "ratio, median (goal >= 0.97)": float(np.median(ratios)),
        "ratio spread (min-max)": f"{ratios.min():.3f}-{ratios.max():.3f}",
        "A/A ratio, median": float(np.median(control)),
        "A/A spread (min-max)": f"{control.min():.3f}-{control.max():.3f}",
    }


def count_instructions(heads, jit, steps):
    """Child side of ``--instructions``: dump callgrind counts of fit calls by name."""
    plain, ours, plain_data, ours_data = compiled_models(heads, jit)
    pid = str(os.getpid())

    def control(*args):
        subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)

    for name, model, data in (("plain_1", plain, plain_data), ("ours_1", ours, ours_data),
                              ("plain_2", plain, plain_data), ("ours_2", ours, ours_data)):
        model.fit(data, epochs=1, steps_per_epoch=3, verbose=0)  # tracing, compilation
        control("--zero")
        control("--instr=on")
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
        control("--instr=off")
        control(f"--dump={name}")


def instructions_row(heads, jit, steps):
    """Run one form under callgrind in a child process; the ratio of its counts."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind).")
    with tempfile.TemporaryDirectory() as out:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={out}/callgrind.out", sys.executable,
                   os.path.abspath(__file__), "--count", heads, str(int(jit)), str(steps)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KSE_BENCH_THREADS": "1"}
        subprocess.run(command, check=True, env=env, capture_output=True)
        counts = {}
        for path in os.listdir(out):
            text = open(os.path.join(out, path)).read()
            trigger = re.search(r"^desc: Trigger: dump (\S+)", text, re.M)
            total = re.search(r"^totals: (\d+)", text, re.M)
            if trigger and total:
                counts[trigger.group(1)] = int(total.group(1))
    plain = np.array([counts["plain_1"], counts["plain_2"]], float) / steps
    ours = np.array([counts["ours_1"], counts["ours_2"]], float) / steps
    return {
        "network": heads,
        "jit_compile": jit,
        "keras.Model.fit instructions/step": float(plain.mean()),
        "SelfEvolvingModel.fit instructions/step": float(ours.mean()),
        "ratio reference/ours (goal >= 0.97)": float(plain.mean() / ours.mean()),
        "A/A: reference counts differ by": f"{abs(plain[0] - plain[1]) / plain.mean():.2%}",
    }


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--count":
        _, _, heads, jit, steps = sys.argv
        count_instructions(heads, jit == "1", int(steps))
        return
    args = parse_args(__doc__, flags={"--instructions": "count CPU instructions (valgrind)"})
    steps = 10 if args.quick else 40
    if args.instructions:
        steps = 5 if args.quick else 20
        rows = [instructions_row(heads, jit, steps) for heads, jit in FORMS if not jit]
        report("fit_overhead_instructions", rows, batch=BATCH, steps=steps)
        return
    repeats = 4 if args.quick else max(args.repeats, 12)
    rows = [wall_clock_row(heads, jit, steps, repeats) for heads, jit in FORMS]
    report("fit_overhead", rows, batch=BATCH, steps_per_epoch=steps, repeats=repeats)


if __name__ == "__main__":
    main()
