"""Adapting a small gpt to an unseen play: meta-learned starts against joint pretraining.

Rows (initial weights of a small `gpt`, each trained for the same wall-time budget in its
own process): scratch (no training), joint pretraining (Adam on random windows of the 32
training plays), FOMAML, Reptile and MAML (MetaLearner on `kse.data.text_tasks` of the
training plays), MAML with five inner steps at a smaller rate, and joint pretraining for
half the budget followed by MAML from its weights. Every row then adapts with plain SGD on
each held-out play: K support windows from one region of the play, the query nats/char on
windows from another region, after 0, 1, 5, 10 and 50 steps. Each row's SGD step size is
picked from a grid on tasks of the training plays' validation parts (never on the held-out
plays). Means and 95% intervals are over plays x seeds; the meta rows are also compared
with joint pretraining pairwise. The rows joint+metasgd... adapt with Meta-SGD's learned
rates (trained for 5 or 10 inner steps, at an outer rate of 3e-3 or 3e-4, from the step
size tuned on a grid reaching 0.003 or 3e-4) on their jointly pretrained weights and are
compared with the tuned SGD of the same weights on the same tasks (their per_play_sgd).
Writes results/lm_adaptation.json and models/maml_shakespeare/adaptation_curves.png.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import RESULTS_DIR, parse_args  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CARD_DIR = os.path.join(HERE, "..", "models", "maml_shakespeare")
ROWS = ("scratch", "joint", "fomaml", "reptile", "maml", "maml5", "joint+maml",
        "joint+metasgd", "joint+metasgd10", "joint+metasgd10-slow", "joint+metasgd10-fine")
STEPS = (0, 1, 5, 10, 50)
LEARNING_RATES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
# "joint+metasgd...": joint pretraining for the whole budget, then Meta-SGD learns only the
# inner rates (the weights stay the pretrained ones; train_weights=False) for another budget,
# from the tuned SGD step size, with this many inner steps, this outer Adam rate and this
# grid for the SGD step size ("-fine": down to 3e-4, below the grid's 0.003).
METASGD = {"joint+metasgd": (5, 3e-3, LEARNING_RATES),
           "joint+metasgd10": (10, 3e-3, LEARNING_RATES),
           "joint+metasgd10-slow": (10, 3e-4, LEARNING_RATES),
           "joint+metasgd10-fine": (10, 3e-4, (0.0003, 0.001, *LEARNING_RATES))}
JOINT_ROWS = ("joint", "joint+maml", *METASGD)
SHAPE = dict(num_layers=2, num_heads=4, width=64, block_size=64)
SHOTS, QUERIES, WINDOW, META_BATCH = 8, 8, 64, 8
TASKS_PER_PLAY = 8
# inner_lr, inner_steps. "maml5": five smaller inner steps; "joint+maml": joint pretraining
# for half the budget, then MAML from those weights with an inner rate near the step size
# that suits fine-tuning a pretrained model.
INNER = {"fomaml": (0.5, 1), "maml": (0.5, 1), "reptile": (0.5, 5), "maml5": (0.1, 5),
         "joint+maml": (0.03, 1)}


def _adaptation_curve(net, tasks, learning_rate: float, last: int = STEPS[-1],
                      rates: list | None = None) -> np.ndarray:
    """Mean query nats/char of ``tasks`` after each count in STEPS (up to ``last``) of SGD.

    ``rates``: per-parameter step sizes (Meta-SGD's learned ones) instead of ``learning_rate``.
    """
    import tensorflow as tf

    import keras_selfevo as kse

    learner = kse.MetaLearner(net, "fomaml", inner_lr=learning_rate)

    @tf.function(reduce_retracing=True)
    def one_step(theta, sx, sy):
        return tf.vectorized_map(
            lambda a: learner.fast_weights(a[1], a[2], 1, list(a[0]), rates), (theta, sx, sy))

    @tf.function(reduce_retracing=True)
    def query_loss(theta, qx, qy):
        return tf.vectorized_map(lambda a: learner.task_loss(list(a[0]), a[1], a[2])[0],
                                 (theta, qx, qy))

    curves = []
    for (sx, sy), (qx, qy) in tasks:
        theta = [tf.repeat(tf.convert_to_tensor(v)[None], len(sx), axis=0)
                 for v in net.trainable_variables]
        done, row = 0, []
        for steps in (s for s in STEPS if s <= last):
            for _ in range(steps - done):
                theta = one_step(theta, sx, sy)
            done = steps
            row.append(query_loss(theta, qx, qy).numpy().mean())
        curves.append(row)
    return np.mean(curves, axis=0)


def _meta_train(learner, streams, seed: int, start: float, budget: float,
                iterations: int) -> int:
    """Meta-train on tasks of ``streams`` until ``budget`` seconds after ``start``."""
    import keras_selfevo as kse

    while time.perf_counter() - start < budget:
        tasks = kse.data.text_tasks(streams, SHOTS, QUERIES, WINDOW, META_BATCH, seed=seed,
                                    num_meta_batches=10, first_meta_batch=iterations)
        learner.fit(tasks, epochs=1, verbose=0)
        iterations += 10
    return iterations


def run_case(row: str, seed: int, budget: float) -> dict:
    import keras

    import keras_selfevo as kse

    vocabulary = kse.data.shakespeare.vocabulary()
    net = kse.zoo.build("gpt", vocabulary=vocabulary, seed=seed, **SHAPE)
    train_streams = list(kse.data.shakespeare_streams("train").values())
    start, iterations = time.perf_counter(), 0
    if row in JOINT_ROWS:
        net.compile(optimizer=keras.optimizers.Adam(1e-3))
        ids = np.concatenate(train_streams)
        batch = META_BATCH * (SHOTS + QUERIES)  # the windows a meta-step reads
        joint_budget = budget / 2 if row == "joint+maml" else budget
        while time.perf_counter() - start < joint_budget:
            batches = kse.data.window_batches(ids, WINDOW, batch, seed, iterations,
                                              iterations + 50)
            net.fit(batches, epochs=1, verbose=0, shuffle=False)
            iterations += 50
    if row not in ("scratch", "joint", *METASGD):
        inner_lr, inner_steps = INNER[row]
        algorithm = "maml" if row in ("maml5", "joint+maml") else row
        learner = kse.MetaLearner(net, algorithm, inner_lr=inner_lr, inner_steps=inner_steps)
        learner.compile(optimizer=keras.optimizers.Adam(1e-3))
        iterations = _meta_train(learner, train_streams, seed, start, budget, iterations)
    train_seconds = time.perf_counter() - start
    # The SGD step size, picked on the training plays' validation parts.
    validation = list(kse.data.shakespeare_streams("validation").values())
    picking = list(kse.data.text_tasks(validation, SHOTS, QUERIES, WINDOW, META_BATCH,
                                       region=512, seed=1000 + seed, num_meta_batches=4))
    grid = METASGD[row][2] if row in METASGD else LEARNING_RATES
    scores = {lr: _adaptation_curve(net, picking, lr, last=10)[-1] for lr in grid}
    chosen = min(scores, key=lambda lr: scores[lr] if np.isfinite(scores[lr]) else np.inf)
    held_out = kse.data.shakespeare_streams("test")
    held_out_tasks = {
        name: list(kse.data.text_tasks([stream], SHOTS, QUERIES, WINDOW, TASKS_PER_PLAY,
                                       seed=5000 + 100 * seed + index, num_meta_batches=1))
        for index, (name, stream) in enumerate(held_out.items())}
    per_play = {name: _adaptation_curve(net, tasks, chosen).tolist()
                for name, tasks in held_out_tasks.items()}
    extra = {}
    if row in METASGD:
        inner_steps, outer_lr, _ = METASGD[row]
        learner = kse.MetaLearner(net, "metasgd", inner_lr=chosen, inner_steps=inner_steps,
                                  train_weights=False)
        learner.compile(optimizer=keras.optimizers.Adam(outer_lr))
        start = time.perf_counter()
        rate_iterations = _meta_train(learner, train_streams, seed, start, budget, 0)
        rates = [r.numpy() for r in learner.inner_rates()]
        extra = {"per_play_sgd": per_play, "rate_iterations": rate_iterations,
                 "rate_seconds": time.perf_counter() - start,
                 "rates": {v.path: [float(r.min()), float(np.median(r)), float(r.max())]
                           for v, r in zip(net.trainable_variables, rates)}}
        per_play = {name: _adaptation_curve(net, tasks, chosen, rates=rates).tolist()
                    for name, tasks in held_out_tasks.items()}
    return {"row": row, "seed": seed, "iterations": iterations, "train_seconds": train_seconds,
            "learning_rate": chosen, "picking_scores": {str(k): float(v)
                                                        for k, v in scores.items()},
            "per_play": per_play, **extra,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def _interval(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))


def summarise(cases: list[dict]) -> dict:
    by_row = {row: [c for c in cases if c["row"] == row] for row in ROWS}
    table = {}
    for row, runs in by_row.items():
        if not runs:
            continue
        values = np.array([curve for run in runs for curve in run["per_play"].values()])
        table[row] = {"steps": {str(s): _interval(values[:, i]) for i, s in enumerate(STEPS)},
                      "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
                      "iterations": [r["iterations"] for r in runs],
                      "learning_rates": [r["learning_rate"] for r in runs]}
        if row in METASGD:
            diffs = np.array([np.array(c) - np.array(r["per_play_sgd"][p])
                              for r in runs for p, c in r["per_play"].items()])
            table[row]["minus_own_sgd"] = {str(s): _interval(diffs[:, i])
                                           for i, s in enumerate(STEPS)}
        elif row not in ("scratch", "joint") and by_row["joint"]:
            joint = {(r["seed"], p): c for r in by_row["joint"] for p, c in r["per_play"].items()}
            diffs = np.array([np.array(c) - np.array(joint[(r["seed"], p)])
                              for r in runs for p, c in r["per_play"].items()
                              if (r["seed"], p) in joint])
            table[row]["minus_joint"] = {str(s): _interval(diffs[:, i])
                                         for i, s in enumerate(STEPS)}
    return table


def plot(table: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for row, result in table.items():
        means = [result["steps"][str(s)][0] for s in STEPS]
        errors = [result["steps"][str(s)][1] for s in STEPS]
        axis.errorbar(np.array(STEPS) + 1, means, yerr=errors, marker="o", capsize=3, label=row)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(np.array(STEPS) + 1, [str(s) for s in STEPS])
    axis.set_xlabel("SGD adaptation steps on the play's support windows")
    axis.set_ylabel("query nats/char (held-out plays)")
    axis.set_title("Adapting a small gpt to an unseen Shakespeare play")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))
        return
    args = parse_args(__doc__.splitlines()[0], options={
        "--rows": f"comma-separated rows to run (default: all of {','.join(ROWS)}); rows "
                  "of an earlier run in results/lm_adaptation.json are kept"})
    budget, seeds = (20.0, 1) if args.quick else (120.0, 3)
    rows = args.rows.split(",") if args.rows else list(ROWS)
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise SystemExit(f"--rows: unknown {unknown}; expected some of {ROWS}")
    cases = []
    earlier = os.path.join(RESULTS_DIR, "lm_adaptation.json")
    if args.rows and os.path.isfile(earlier):
        with open(earlier) as handle:
            cases = [c for c in json.load(handle)["cases"] if c["row"] not in rows]
    for seed in range(seeds):
        for row in rows:
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
            done = subprocess.run([sys.executable, __file__, "--case", row, str(seed),
                                   str(budget)], capture_output=True, text=True, env=env)
            if done.returncode:
                print(f"{row} seed {seed} failed: {done.stderr[-500:]}", flush=True)
                continue
            case = json.loads(done.stdout.strip().splitlines()[-1])
            cases.append(case)
            curve = np.mean(list(case["per_play"].values()), axis=0)
            print(f"{row} seed {seed}: {case['iterations']} iterations in "
                  f"{case['train_seconds']:.0f} s, lr {case['learning_rate']}, query nats/char "
                  + " / ".join(f"{v:.3f}" for v in curve), flush=True)
    table = summarise(cases)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, "lm_adaptation.json"), "w") as handle:
        json.dump({"budget_s": budget, "seeds": seeds, "shape": SHAPE, "table": table,
                   "cases": cases}, handle, indent=2)
    os.makedirs(CARD_DIR, exist_ok=True)
    plot(table, os.path.join(CARD_DIR, "adaptation_curves.png"))
    for row, result in table.items():
        cells = "  ".join(f"{s}: {m:.3f}±{c:.3f}" for s, (m, c) in result["steps"].items())
        print(f"{row:8s} {cells}")
        if "minus_own_sgd" in result:
            cells = "  ".join(f"{s}: {m:+.3f}±{c:.3f}"
                              for s, (m, c) in result["minus_own_sgd"].items())
            print(f"{'  - its own tuned SGD':8s} {cells}")
        if "minus_joint" in result:
            cells = "  ".join(f"{s}: {m:+.3f}±{c:.3f}"
                              for s, (m, c) in result["minus_joint"].items())
            print(f"{'  - joint':8s} {cells}")


if __name__ == "__main__":
    main()
