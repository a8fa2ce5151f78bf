"""MetaLearner on language models: meta-iterations/s, first step and peak memory per algorithm.

`gpt` at nanoGPT's CPU-recipe size (4 layers, 4 heads, width 128, block 64) and `char_rnn`
(GRU 128), on `kse.data.text_tasks` of the Shakespeare training plays: meta-batch 8, K = 8
support and 8 query windows of 64 characters, one inner step (Reptile: 5), with and without
XLA. Each case runs in its own process; peak RSS is the process's maximum resident size.
The reference in the same process: one plain `fit` step of the same network on the same
number of windows (meta-batch x (K + queries)), so the ratio says what the meta-step costs.
"""

import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

CASES = [("gpt", "maml"), ("gpt", "fomaml"), ("gpt", "reptile"), ("gpt", "anil"),
         ("char_rnn", "maml"), ("char_rnn", "fomaml")]
META_BATCH, SHOTS, WINDOW = 8, 8, 64


def run_case(name: str, algorithm: str, jit: bool, steps: int) -> dict:
    import keras

    import keras_selfevo as kse

    streams = list(kse.data.shakespeare_streams("train").values())
    tasks = kse.data.text_tasks(streams, SHOTS, SHOTS, WINDOW, META_BATCH, seed=0).repeat()
    shape = (dict(num_layers=4, num_heads=4, width=128, block_size=WINDOW) if name == "gpt"
             else dict(units=128))
    vocabulary = kse.data.shakespeare.vocabulary()
    net = kse.zoo.build(name, vocabulary=vocabulary, seed=0, **shape)
    head = ["embedding", "final_norm"] if name == "gpt" else ["logits"]
    extra = {"adapt_layers": head} if algorithm == "anil" else {}
    steps_inner = 5 if algorithm == "reptile" else 1
    learner = kse.MetaLearner(net, algorithm, inner_lr=0.5, inner_steps=steps_inner, **extra)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
    start = time.perf_counter()
    learner.fit(tasks, steps_per_epoch=1, verbose=0)
    first_step = time.perf_counter() - start
    start = time.perf_counter()
    learner.fit(tasks, steps_per_epoch=steps, verbose=0)
    meta_rate = steps / (time.perf_counter() - start)
    plain = kse.zoo.build(name, vocabulary=vocabulary, seed=0, **shape)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
    windows = kse.data.window_batches(streams[0], WINDOW, META_BATCH * 2 * SHOTS, 0, 0, 4)
    plain.fit(windows.repeat(), steps_per_epoch=2, verbose=0)
    start = time.perf_counter()
    plain.fit(windows.repeat(), steps_per_epoch=steps, verbose=0)
    plain_rate = steps / (time.perf_counter() - start)
    return {"case": f"{name} {algorithm} ({'XLA' if jit else 'graph'})",
            "meta_it_per_s": meta_rate, "plain_fit_steps_per_s": plain_rate,
            "meta_step_vs_plain_step": plain_rate / meta_rate, "first_step_s": first_step,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2], sys.argv[3], sys.argv[4] == "1",
                                  int(sys.argv[5]))))
        return
    args = parse_args(__doc__.splitlines()[0])
    rows = []
    for name, algorithm in CASES:
        for jit in (False, True):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
            done = subprocess.run([sys.executable, __file__, "--case", name, algorithm,
                                   str(int(jit)), "3" if args.quick else "10"],
                                  capture_output=True, text=True, env=env)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0
                        else {"case": f"{name} {algorithm} jit={jit}",
                              "error": done.stderr[-300:]})
            print(rows[-1], flush=True)
    columns = ["case", "meta_it_per_s", "plain_fit_steps_per_s", "meta_step_vs_plain_step",
               "first_step_s", "peak_rss_gb"]
    report("lm_meta_throughput", [{c: row.get(c, row.get("error", "")) for c in columns}
                                  for row in rows],
           target="second-order MAML through the CPU-recipe gpt fits in 8 GB")


if __name__ == "__main__":
    main()
