"""MetaLearner throughput: meta-iterations/s, first-step time and peak RSS.

Cases (second-order MAML, 1 inner step):
  (a) sinusoid MLP 1-40-40-1, meta-batch 25, K=10 support + 10 query points;
  (b) conv4 (64 filters), 5-way 1-shot, 15 queries per class, meta-batch 32, 28x28 glyphs,
      in the form MAML and learn2learn use on Omniglot (stride-2 convolutions, mean over the
      last map: ``downsample="stride"``); (b') the same with 2x2 max pooling after stride-1
      convolutions (``downsample="pool"``, the zoo's default, MAML's MiniImageNet form),
      which costs ~3.7x the multiply-adds on 28x28 inputs. (b') runs without XLA only: XLA's
      CPU convolutions with second-order gradients took > 6 minutes for 4 iterations;
  (c) the MAML paper's MiniImageNet setting: conv4 with 32 filters and max pooling on
      84x84x3 inputs, 5-way 1-shot, 15 queries per class, meta-batch 4, 5 inner steps,
      inner lr 0.01 (the anchor's ``conv4mi`` case); without XLA, as (b').
Each case runs with and without ``jit_compile``, in its own process (so peak RSS is the
case's own: "peak_rss_mb" is read after meta-training, before the reference runs;
"peak_rss_with_reference_mb" at the end). "first step" is the first ``train_on_batch``
(trace + compile + one step); throughput is measured with ``fit`` over many meta-batches
after it (steps_per_execution as given): fresh sinusoid tasks, cached beforehand; for the
conv cases one meta-batch of random images, repeated, as the learn2learn anchor does. The
reference, in the same process, is a plain ``keras.Model.fit`` step of the same network on
the meta-batch's query examples as one ordinary batch: the ratio says how many plain
training steps one meta-iteration costs.
"""

import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

CASES = {
    "a_sinusoid_mlp": {"iterations": 2000, "quick": 300, "steps_per_execution": 50,
                       "model": ("sinusoid_mlp", {})},
    "b_conv4_5way1shot": {"iterations": 16, "quick": 4, "steps_per_execution": 1,
                          "model": ("conv4", {"num_classes": 5, "downsample": "stride"})},
    "b'_conv4_maxpool_5way1shot": {"iterations": 8, "quick": 3, "steps_per_execution": 1,
                                   "model": ("conv4", {"num_classes": 5, "downsample": "pool"}),
                                   "xla": False},
    "c_conv4_miniimagenet_5way1shot": {
        "iterations": 6, "quick": 2, "steps_per_execution": 1, "xla": False,
        "model": ("conv4", {"num_classes": 5, "downsample": "pool", "filters": 32,
                            "input_shape": (84, 84, 3)}),
        "image": (84, 84, 3), "meta_batch": 4, "inner_steps": 5, "inner_lr": 0.01},
}
TIMEOUT = 900


def _tasks(case: str):
    """The case's stream of meta-batches and its loss.

    The conv cases repeat one meta-batch of random images, as the learn2learn anchor does
    (``l2l_maml.py`` trains on one ``torch.rand`` meta-batch): the cost does not depend on
    the pixels, and no dataset sits in the peak RSS that the anchor's run does not hold.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_selfevo as kse
    from keras_selfevo.data.pipeline import untuned

    if case.startswith("a"):
        return kse.data.sinusoid_tasks(10, 10, 25, seed=0), "mean_squared_error"
    spec = CASES[case]
    tasks, image = spec.get("meta_batch", 32), spec.get("image", (28, 28, 1))
    ways, shots, queries = 5, 1, 15
    rng = np.random.default_rng(0)

    def part(per_class):
        x = rng.random((tasks, ways * per_class, *image), dtype=np.float32)
        y = np.broadcast_to(np.repeat(np.arange(ways, dtype=np.int32), per_class),
                            (tasks, ways * per_class))
        return tf.constant(x), tf.constant(y)

    meta_batch = (part(shots), part(queries))
    # Untuned as the package's own pipelines (keras_selfevo.data.pipeline.untuned): with
    # tf.data's autotuning on, every `fit` ends with a ~2 s wait for its thread.
    return (untuned(tf.data.Dataset.from_tensors(meta_batch).repeat()),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def run_case(case: str, jit: bool, quick: bool, parallel_tasks: int | None = None) -> dict:
    import keras
    import tensorflow as tf

    import keras_selfevo as kse

    spec = CASES[case]
    iterations = spec["quick"] if quick else spec["iterations"]
    tasks, loss = _tasks(case)
    name, model_args = spec["model"]
    net = kse.zoo.build(name, seed=0, **model_args)
    inner_lr = spec.get("inner_lr", 0.01 if case.startswith("a") else 0.4)
    learner = kse.MetaLearner(net, "maml", inner_lr=inner_lr,
                              inner_steps=spec.get("inner_steps", 1), loss=loss,
                              **({"parallel_tasks": parallel_tasks} if parallel_tasks else {}))
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit,
                    steps_per_execution=spec["steps_per_execution"])
    first_batch = next(iter(tasks))
    start = time.perf_counter()
    learner.train_on_batch(first_batch)
    first_step = time.perf_counter() - start
    data = tasks.take(iterations)
    if case.startswith("a"):
        data = data.cache()
        for _ in data:  # fill the cache: input generation is not what is measured
            pass
    learner.fit(data.take(spec["steps_per_execution"]), verbose=0)  # warm the fit function
    start = time.perf_counter()
    learner.fit(data, verbose=0)
    meta_per_second = iterations / (time.perf_counter() - start)
    meta_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the reference

    # Reference: a plain fit step of the same network on the query set as one batch.
    (_, _), (query_x, query_y) = first_batch
    x = tf.reshape(query_x, [-1, *query_x.shape[2:]])
    y = tf.reshape(query_y, [-1, *query_y.shape[2:]])
    plain = kse.zoo.build(name, seed=0, **model_args)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit,
                  steps_per_execution=spec["steps_per_execution"])
    batches = tf.data.Dataset.from_tensors((x, y)).repeat(iterations).cache()
    plain.fit(batches.take(spec["steps_per_execution"]), verbose=0)
    start = time.perf_counter()
    plain.fit(batches, verbose=0)
    plain_per_second = iterations / (time.perf_counter() - start)
    return {
        "case": case,
        "jit_compile": jit,
        "parallel_tasks": learner.parallel_tasks,
        "meta_it_per_s": meta_per_second,
        "first_step_s": first_step,
        "peak_rss_mb": meta_peak,
        "peak_rss_with_reference_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "plain_steps_per_s": plain_per_second,
        "plain_steps_per_meta_it": plain_per_second / meta_per_second,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        _, _, case, jit, quick, parallel = sys.argv
        print(json.dumps(run_case(case, jit == "1", quick == "1", int(parallel) or None)))
        return
    args = parse_args(__doc__.splitlines()[0], options={
        "--cases": "comma-separated case letters to run, e.g. \"b',c\" (default: all)",
        "--parallel-tasks": "tasks at a time in MetaLearner's task loop (default: its own)"})
    args.cases = args.cases.split(",") if args.cases else []
    rows = []
    chosen = [c for c in CASES if not args.cases or c.split("_")[0] in args.cases]
    for case in chosen:
        for jit in (False, True) if CASES[case].get("xla", True) else (False,):
            command = [sys.executable, __file__, "--case", case, str(int(jit)),
                       str(int(args.quick)), args.parallel_tasks or "0"]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
            try:
                done = subprocess.run(command, capture_output=True, text=True, env=env,
                                      timeout=TIMEOUT)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]) if
                            done.returncode == 0 else {"case": case, "jit_compile": jit,
                                                       "error": done.stderr[-300:]})
            except subprocess.TimeoutExpired:
                rows.append({"case": case, "jit_compile": jit,
                             "error": f"did not finish in {TIMEOUT} s"})
            print(rows[-1], flush=True)
    columns = ["case", "jit_compile", "parallel_tasks", "meta_it_per_s", "first_step_s",
               "peak_rss_mb", "peak_rss_with_reference_mb", "plain_steps_per_meta_it"]
    report("meta_throughput", [{c: row.get(c, row.get("error", "")) for c in columns}
                               for row in rows], targets={"a": ">= 1100 meta-it/s",
                                                          "b": ">= 0.7 meta-it/s, first "
                                                               "step <= 15 s",
                                                          "b', c": ">= 1.5x learn2learn"})


if __name__ == "__main__":
    main()
