"""Language-model training speed: characters/s of `gpt` beside nanoGPT, at two sizes.

Sizes: "cpu", nanoGPT's CPU recipe (4 layers, 4 heads, width 128, block 64, batch 12), and
"large", the anchor's larger run (6 layers, 6 heads, width 192, block 128, batch 16); the
step is AdamW betas (0.9, 0.99), weight decay 0.1, gradient clip 1.0 on the next-token
log-likelihood, on random windows of the Shakespeare training split. Cases, each in its own
process:
  ours: `SelfEvolvingModel.fit` of `kse.zoo.build("gpt")` (alpha 1), with and without
        `jit_compile`, 100 steps per execution at the CPU-recipe size as its recipe (20 at the
        larger size); in the same process and interleaved with it, the reference: a plain
        `keras.Model.fit` of the same layers with `SparseCategoricalCrossentropy` and the
        same steps per execution;
  anchor: nanoGPT's own model and loop (`../shared/anchors/nanogpt_chars.py`, PyTorch), when
        its environment `.anchor-venv` exists (`bash ../shared/anchors/setup.sh`); it trains
        the full recipe and also prints its validation nats/char.
Characters/s count training characters (batch x block per step) after one warm-up execution.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ANCHOR = os.path.join(HERE, "..", "..", "shared", "anchors", "nanogpt_chars.py")
ANCHOR_PYTHON = os.path.join(HERE, "..", ".anchor-venv", "bin", "python")
# size: (layers, heads, width, block, batch), our timed steps (quick), anchor iterations
# (quick), steps per execution (the CPU recipe's; each round's steps are a multiple of it)
SIZES = {"cpu": ((4, 4, 128, 64, 12), 800, 400, 2000, 300, 100),
         "large": ((6, 6, 192, 128, 16), 160, 80, 300, 60, 20)}
ROUNDS = 4
TIMEOUT = 1800


def run_case(size: str, jit: bool, steps: int) -> dict:
    import keras

    import keras_selfevo as kse
    from keras_selfevo.data import language_data
    from keras_selfevo.recipes import data

    (layers, heads, width, block, batch), *_, per_execution = SIZES[size]
    config = {"dataset": "selfevo_shakespeare", "data_dir": None, "train_split": "train",
              "validation_split": None, "sequence_length": block}
    ids = data.read_corpus(config)[0]
    # Every fit call reads the dataset from its start: one round's worth of distinct batches.
    batches = language_data.window_batches(ids, block, batch, 0, 0, steps // ROUNDS).repeat()
    shape = dict(num_layers=layers, num_heads=heads, width=width, block_size=block)

    def optimizer():
        return keras.optimizers.AdamW(1e-3, weight_decay=0.1, beta_1=0.9, beta_2=0.99,
                                      global_clipnorm=1.0)

    ours = kse.zoo.build("gpt", vocabulary=kse.data.shakespeare.vocabulary(), seed=0, **shape)
    ours.compile(optimizer=optimizer(), jit_compile=jit, steps_per_execution=per_execution)
    network = kse.zoo.build("gpt", vocabulary=kse.data.shakespeare.vocabulary(), seed=0,
                            **shape)
    tokens = keras.Input((block,), dtype="int32")
    plain = keras.Model(tokens, network(tokens)["self"])
    plain.compile(optimizer=optimizer(), jit_compile=jit, steps_per_execution=per_execution,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain_batches = batches.map(lambda x, y: (x, y["self"]))
    sources = {"ours": batches, "plain": plain_batches}
    models = {"ours": ours, "plain": plain}
    first_x, first_y = next(iter(batches))
    start = time.perf_counter()
    ours.train_on_batch(first_x, first_y)  # trace + compile + one step
    first_step = time.perf_counter() - start
    # Warm-up: one execution each (Keras runs whole executions, whatever steps_per_epoch).
    ours.fit(sources["ours"], steps_per_epoch=per_execution, verbose=0)
    plain.fit(sources["plain"], steps_per_epoch=per_execution, verbose=0)
    times = {"ours": 0.0, "plain": 0.0}
    for index in range(ROUNDS):  # ABBA order against drift
        order = ("ours", "plain") if index % 2 == 0 else ("plain", "ours")
        for name in order:
            start = time.perf_counter()
            models[name].fit(sources[name], steps_per_epoch=steps // ROUNDS, verbose=0)
            times[name] += time.perf_counter() - start
    chars = (steps // ROUNDS) * ROUNDS * batch * block
    return {"case": f"{size}: gpt ({'XLA' if jit else 'graph'})",
            "chars_per_s": chars / times["ours"],
            "plain_keras_chars_per_s": chars / times["plain"],
            "ours_vs_plain": times["plain"] / times["ours"], "first_step_s": first_step}


def run_anchor(size: str, iterations: int) -> dict | None:
    if not os.path.exists(ANCHOR_PYTHON):
        return None
    (layers, heads, width, block, batch), *_ = SIZES[size]
    flags = ["--layers", layers, "--heads", heads, "--width", width, "--block", block,
             "--batch", batch]
    done = subprocess.run([ANCHOR_PYTHON, ANCHOR, "--iters", str(iterations),
                           *map(str, flags)], capture_output=True, text=True, timeout=TIMEOUT)
    line = next((x for x in done.stdout.splitlines() if "train chars/s" in x), None)
    if done.returncode or line is None:
        return {"case": f"{size}: nanoGPT anchor", "error": done.stderr[-300:]}
    rate = float(re.search(r"([\d,]+) train chars/s", line).group(1).replace(",", ""))
    nats = float(re.search(r"validation ([\d.]+) nats/char", line).group(1))
    wall = float(re.search(r"in ([\d.]+) s", line).group(1))
    return {"case": f"{size}: nanoGPT anchor (torch), {iterations} iterations",
            "chars_per_s": rate, "validation": nats, "wall_s": wall}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]))))
        return
    args = parse_args(__doc__.splitlines()[0])
    table, anchors = [], {}
    for size, (_, steps, quick_steps, iterations, quick_iterations, _) in SIZES.items():
        anchor = run_anchor(size, quick_iterations if args.quick else iterations)
        rows = []
        for jit in (False, True):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
            command = [sys.executable, __file__, "--case", size, str(int(jit)),
                       str(quick_steps if args.quick else steps)]
            done = subprocess.run(command, capture_output=True, text=True, env=env,
                                  timeout=TIMEOUT)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0
                        else {"case": f"{size}: gpt jit={jit}", "error": done.stderr[-300:]})
            print(rows[-1], flush=True)
        if anchor is not None:
            print(anchor, flush=True)
            anchors[size] = anchor
            for row in rows:
                if "chars_per_s" in row and "chars_per_s" in anchor:
                    row["ours_vs_anchor"] = row["chars_per_s"] / anchor["chars_per_s"]
            rows.append(anchor)
        table += rows
    columns = ["case", "chars_per_s", "plain_keras_chars_per_s", "ours_vs_plain",
               "ours_vs_anchor", "first_step_s"]
    report("lm_throughput", [{c: row.get(c, row.get("error", "")) for c in columns}
                             for row in table],
           anchors=anchors, target="ours >= 1.2 x the anchor's chars/s")


if __name__ == "__main__":
    main()
