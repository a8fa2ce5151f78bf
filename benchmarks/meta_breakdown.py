"""Where a conv4 meta-step's time goes, by ablation: what each part of the maths costs.

conv4 with max pooling (MAML's MiniImageNet form) at 28x28x1, 64 filters, 5-way 1-shot,
15 queries per class, meta-batch 32, 1 inner step, inner lr 0.4 — the case where
MetaLearner trails learn2learn. Each variant runs in its own process, without XLA:

- ``full``: second-order MAML (the benchmark case);
- ``first_order``: FOMAML, the same forward passes without the second-order terms;
- ``no_batchnorm``: the same network without BatchNorm;
- ``strided``: stride-2 convolutions instead of max pooling (fewer multiply-adds);
- ``plain_fit``: a plain ``fit`` step of the same network on the meta-batch's query
  examples as one batch (480 images: the forward and backward work of the outer step).

The differences between rows say what second-order gradients, BatchNorm and max pooling
cost, and ``plain_fit`` what the outer step alone would. Writes ``results/meta_breakdown.json``.

    python benchmarks/meta_breakdown.py [--quick]
"""

import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

VARIANTS = ("full", "first_order", "no_batchnorm", "strided", "plain_fit")
TIMEOUT = 900


def run_variant(variant: str, iterations: int) -> dict:
    import keras
    import tensorflow as tf

    import keras_selfevo as kse

    rng = tf.random.Generator.from_seed(0)
    labeled = tf.data.Dataset.from_tensor_slices(
        (tf.cast(rng.uniform([2000, 28, 28, 1], maxval=256, dtype=tf.int32), tf.uint8),
         tf.repeat(tf.range(100), 20)))
    tasks = kse.data.episodes(labeled, ways=5, shots=1, queries=15, meta_batch_size=32)
    data = tasks.take(iterations).cache()
    for _ in data:  # input generation is not what is measured
        pass
    args = {"num_classes": 5, "downsample": "stride" if variant == "strided" else "pool",
            "normalization": None if variant == "no_batchnorm" else "batch"}
    net = kse.zoo.build("conv4", seed=0, **args)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if variant == "plain_fit":
        (_, _), (query_x, query_y) = next(iter(data))
        batch = (tf.reshape(query_x, [-1, 28, 28, 1]), tf.reshape(query_y, [-1]))
        net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        batches = tf.data.Dataset.from_tensors(batch).repeat(iterations).cache()
        start = time.perf_counter()
        net.fit(batches.take(1), verbose=0)
        first = time.perf_counter() - start
        start = time.perf_counter()
        net.fit(batches, verbose=0)
    else:
        algorithm = "fomaml" if variant == "first_order" else "maml"
        learner = kse.MetaLearner(net, algorithm, inner_lr=0.4, inner_steps=1, loss=loss)
        learner.compile(optimizer=keras.optimizers.Adam(1e-3))
        start = time.perf_counter()
        learner.fit(data.take(1), verbose=0)
        first = time.perf_counter() - start
        start = time.perf_counter()
        learner.fit(data, verbose=0)
    seconds = time.perf_counter() - start
    return {"variant": variant, "it_per_s": iterations / seconds,
            "ms_per_it": 1000 * seconds / iterations, "first_step_s": first,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--variant":
        print(json.dumps(run_variant(sys.argv[2], int(sys.argv[3]))))
        return
    args = parse_args(__doc__.splitlines()[0])
    iterations = 3 if args.quick else 8
    rows = []
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--variant", variant, str(iterations)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=TIMEOUT)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0
                    else {"variant": variant, "error": done.stderr[-300:]})
        print(rows[-1], flush=True)
    full = next(r for r in rows if r["variant"] == "full")["ms_per_it"]
    for row in rows:
        row["share_of_full"] = row["ms_per_it"] / full if "ms_per_it" in row else ""
    report("meta_breakdown", rows, iterations=iterations)


if __name__ == "__main__":
    main()
