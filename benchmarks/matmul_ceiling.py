"""The matrix products of a `gpt` training step: TensorFlow's kernels against PyTorch's.

A training step of nanoGPT's CPU recipe (4 layers, width 128, 4 heads, block 64, batch 12)
is 3.95 GFLOP of matrix products: per layer the query, key, value and output projections
(768 x 128 by 128 x 128), the MLP (768 x 128 by 128 x 512, 768 x 512 by 512 x 128) and
the attention products (48 heads x 64 x 32 by 32 x 64, and 64 x 64 by 64 x 32), once the
logits (768 x 128 by 128 x 87); each forward product C = A B also runs twice backward
(dA = dC B^T, dB = A^T dC). This script times every one of those products alone, with
TensorFlow under XLA (the recipe's path) and without it (oneDNN), and, in its own process
when `.anchor-venv` exists (`bash ../shared/anchors/setup.sh`), with PyTorch (2 threads,
the anchor's setting). Summed over a step, the products' time is a floor for a step in
that framework: when TensorFlow's floor exceeds 1/1.2 of the anchor's whole step, no
graph around those kernels can train at 1.2x the anchor's characters/s.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ANCHOR_PYTHON = os.path.join(HERE, "..", ".anchor-venv", "bin", "python")
# (name, batch, m, k, n, products per step) of the forward pass; each also runs backward.
LAYERS, TOKENS, WIDTH, HEADS, BLOCK, VOCAB = 4, 768, 128, 4, 64, 87
FORWARD = [
    ("q, k, v, output projections", 1, TOKENS, WIDTH, WIDTH, 4 * LAYERS),
    ("MLP in", 1, TOKENS, WIDTH, 4 * WIDTH, LAYERS),
    ("MLP out", 1, TOKENS, 4 * WIDTH, WIDTH, LAYERS),
    ("attention scores", TOKENS // BLOCK * HEADS, BLOCK, WIDTH // HEADS, BLOCK, LAYERS),
    ("attention values", TOKENS // BLOCK * HEADS, BLOCK, BLOCK, WIDTH // HEADS, LAYERS),
    ("logits", 1, TOKENS, WIDTH, VOCAB, 1),
]
REPEATS = 50


def _forms(m: int, k: int, n: int) -> list[tuple[str, int, int, int, bool, bool]]:
    """The three products a forward ``[m, k] x [k, n]`` costs in a training step.

    Each as (form, rows, inner, columns, A stored transposed, B stored transposed).
    """
    return [("C = A B", m, k, n, False, False), ("dA = dC B^T", m, n, k, False, True),
            ("dB = A^T dC", k, m, n, True, False)]


def _shape(rows: int, inner: int, columns: int, ta: bool, tb: bool, batch: int):
    a = (inner, rows) if ta else (rows, inner)
    b = (columns, inner) if tb else (inner, columns)
    prefix = (batch,) if batch > 1 else ()
    return prefix + a, prefix + b


def tensorflow_seconds(jit: bool, rounds: int) -> dict[str, float]:
    """Seconds per product of each (name, form), best of ``rounds``."""
    import numpy as np
    import tensorflow as tf

    out = {}
    rng = np.random.default_rng(0)
    for name, batch, m, k, n, _ in FORWARD:
        for form, rows, inner, columns, ta, tb in _forms(m, k, n):
            a_shape, b_shape = _shape(rows, inner, columns, ta, tb, batch)
            a = [tf.constant(rng.standard_normal(a_shape), tf.float32) for _ in range(REPEATS)]
            b = tf.constant(rng.standard_normal(b_shape), tf.float32)

            @tf.function(jit_compile=jit)
            def products(a, b, ta=ta, tb=tb):
                # Independent products on distinct inputs: nothing to hoist or merge.
                return [tf.matmul(x, b, transpose_a=ta, transpose_b=tb) for x in a]

            products(a, b)
            best = float("inf")
            for _ in range(rounds):
                start = time.perf_counter()
                products(a, b)[-1].numpy()
                best = min(best, time.perf_counter() - start)
            out[f"{name}|{form}"] = best / REPEATS
    return out


TORCH = r"""
import json, sys, time, torch
torch.set_num_threads(2)
forms, rounds, repeats = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = {}
for key, a_shape, b_shape, ta, tb in forms:
    a = torch.randn(repeats, *a_shape); b = torch.randn(*b_shape)
    def run():
        for i in range(repeats):
            (a[i].transpose(-1, -2) if ta else a[i]) @ (b.transpose(-1, -2) if tb else b)
    run()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter(); run(); best = min(best, time.perf_counter() - start)
    out[key] = best / repeats
print(json.dumps({"torch": torch.__version__, "seconds": out}))
"""


def torch_seconds(rounds: int) -> dict | None:
    """The same products with PyTorch in the anchor's environment, or None without it."""
    if not os.path.exists(ANCHOR_PYTHON):
        return None
    forms = []
    for name, batch, m, k, n, _ in FORWARD:
        for form, rows, inner, columns, ta, tb in _forms(m, k, n):
            a_shape, b_shape = _shape(rows, inner, columns, ta, tb, batch)
            forms.append((f"{name}|{form}", a_shape, b_shape, ta, tb))
    done = subprocess.run([ANCHOR_PYTHON, "-c", TORCH, json.dumps(forms), str(rounds),
                           str(REPEATS)], capture_output=True, text=True, timeout=900)
    if done.returncode:
        print(done.stderr[-500:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--tensorflow":
        print(json.dumps(tensorflow_seconds(sys.argv[2] == "1", int(sys.argv[3]))))
        return
    args = parse_args(__doc__.splitlines()[0])
    rounds = 5 if args.quick else 20
    columns = {}
    for jit in (True, False):  # each in its own process, as the other frameworks
        command = [sys.executable, __file__, "--tensorflow", str(int(jit)), str(rounds)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        columns["TensorFlow XLA" if jit else "TensorFlow oneDNN"] = (
            json.loads(done.stdout.strip().splitlines()[-1]))
    anchor = torch_seconds(rounds)
    if anchor is not None:
        columns[f"PyTorch {anchor['torch']}"] = anchor["seconds"]
    rows, totals = [], dict.fromkeys(columns, 0.0)
    for name, batch, m, k, n, count in FORWARD:
        for form, rows_, inner, columns_, _, _ in _forms(m, k, n):
            key = f"{name}|{form}"
            flop = 2.0 * batch * rows_ * inner * columns_
            row = {"product": f"{name}: {form}", "per step": count,
                   "shape": f"{batch} x " * (batch > 1) + f"{rows_} x {inner} x {columns_}"}
            for label, seconds in columns.items():
                row[f"{label} GFLOP/s"] = flop / seconds[key] / 1e9
                totals[label] += count * seconds[key]
            rows.append(row)
    total_row = {"product": "all products of one step (ms)", "per step": "", "shape": ""}
    for label in columns:
        total_row[f"{label} GFLOP/s"] = totals[label] * 1e3
    rows.append(total_row)
    report("matmul_ceiling", rows, step_products_ms={k: v * 1e3 for k, v in totals.items()})


if __name__ == "__main__":
    main()
