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

``--ops`` instead profiles two ``full`` meta-steps with TensorFlow's profiler and prints the
time per op type (summed over TensorFlow's executor threads), grouped into convolutions,
batch normalization's fused kernels, pooling, ReLU, and the elementwise ops and
reductions (where unfused normalization's maths and its gradients run).

    python benchmarks/meta_breakdown.py [--quick] [--ops]
"""

import collections
import glob
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
OP_GROUPS = (("convolutions", ("Conv2D",)), ("batch norm, fused kernels", ("FusedBatchNorm",)),
             ("max pooling and its gradients", ("MaxPool",)), ("ReLU and its gradient", ("Relu",)))


def _tasks(iterations: int):
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
    return data


def run_variant(variant: str, iterations: int) -> dict:
    import keras
    import tensorflow as tf

    import keras_selfevo as kse

    data = _tasks(iterations)
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


def op_profile(steps: int = 2) -> list[dict]:
    """Milliseconds per ``full`` meta-step spent in each op type, from TensorFlow's profiler."""
    import tempfile

    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import keras_selfevo as kse

    batch = next(iter(_tasks(1)))
    net = kse.zoo.build("conv4", seed=0, num_classes=5, downsample="pool")
    learner = kse.MetaLearner(net, "maml", inner_lr=0.4, inner_steps=1,
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.compile(optimizer=keras.optimizers.Adam(1e-3))
    for _ in range(2):  # trace, then one warm step
        learner.train_on_batch(batch)
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        learner.train_on_batch(batch)
    wall = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    per_type = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                op_type = plane.event_metadata[event.metadata_id].name.split(":")[-1]
                if op_type != "Process":  # the executor's own span around its ops
                    per_type[op_type] += event.duration_ps / 1e9 / steps
    groups = collections.Counter()
    for op_type, ms in per_type.items():
        group = next((name for name, keys in OP_GROUPS if any(k in op_type for k in keys)),
                     "elementwise ops and reductions" if op_type in _ELEMENTWISE else "other")
        groups[group] += ms
    total = sum(groups.values())
    rows = [{"ops": name, "ms_per_step": ms, "share": ms / total}
            for name, ms in groups.most_common()]
    rows += [{"ops": f"  {op_type}", "ms_per_step": ms, "share": ms / total}
             for op_type, ms in per_type.most_common(12)]
    rows.append({"ops": "wall time per step (2 threads)", "ms_per_step": 1000 * wall,
                 "share": ""})
    return rows


_ELEMENTWISE = {"Mul", "Sum", "Mean", "Tile", "Sub", "AddN", "AddV2", "Square", "Neg", "Rsqrt",
                "RealDiv", "SquaredDifference", "Reciprocal", "Maximum", "BroadcastTo",
                "RsqrtGrad", "Select", "SelectV2", "ZerosLike", "OnesLike", "Cast", "Reshape",
                "Pow", "Sqrt", "Prod", "Fill", "Identity", "ExpandDims", "Squeeze"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--variant":
        print(json.dumps(run_variant(sys.argv[2], int(sys.argv[3]))))
        return
    args = parse_args(__doc__.splitlines()[0], flags={"--ops": "profile the full meta-step "
                                                      "per op type instead"})
    if args.ops:
        report("meta_breakdown_ops", op_profile())
        return
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
