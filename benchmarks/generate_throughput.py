"""Sampling speed: tokens/s of `generate`, and where one self-evolution generation goes.

Part "tokens" (each case in its own process): untrained weights (speed does not depend on
them), a 1-token prompt, 500 new tokens, the best of 3 calls after one warm-up call, at
batch 1 and batch 64:
  gpt:       `kse.zoo.build("gpt")` at nanoGPT's CPU size (4 layers, 4 heads, width 128,
             block 64), key/value cache, XLA; also without the cache ("uncached": the
             network re-run over the context for every token, as before the cache) and
             without XLA;
  char_rnn:  GRU 256 (the shakespeare_char_rnn recipe's size), carried state, XLA; also
             uncached (the GRU re-run over the whole prefix per token) and without XLA;
  keras-hub: `keras_hub.models.GPT2CausalLM` built from a config of the same size (no
             download), `generate` on token ids (cached, compiled; its context grows to 501);
  nanoGPT:   `../shared/anchors/nanogpt_generate.py` (PyTorch; recomputes the cropped window
             per token), when `.anchor-venv` exists (`bash ../shared/anchors/setup.sh`).
The vocabulary has 84 ids, as the anchor's.

Part "loop": one generation of the evolve_meter and evolve_arithmetic recipes (untrained
models, no pretraining), split into sampling (the environment's `act`), scoring (`reward`)
and training (`fit`; every sample kept), medians of generations 2-5 (the first traces and
compiles), with the cache and XLA ("after") and with neither ("before": the code path
sampling had before); training is the recipe's in "after", and in "before" without XLA and
with `char_rnn`'s recurrent loop not unrolled.

    python benchmarks/generate_throughput.py [--quick] [--parts tokens,loop]
        [--recipes evolve_meter,evolve_arithmetic]
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
ANCHOR = os.path.join(HERE, "..", "..", "shared", "anchors", "nanogpt_generate.py")
ANCHOR_PYTHON = os.path.join(HERE, "..", ".anchor-venv", "bin", "python")
VOCAB, NEW, BATCHES = 84, 500, (1, 64)
GENERATIONS = 5  # the loop part: medians of generations 2-5
GPT_SIZE = dict(num_layers=4, num_heads=4, width=128, block_size=64)
CASES = {  # name: (model, use_cache, jit_compile)
    "gpt": ("gpt", True, True), "gpt no XLA": ("gpt", True, False),
    "gpt uncached": ("gpt", False, False),
    "char_rnn": ("char_rnn", True, True), "char_rnn no XLA": ("char_rnn", True, False),
    "char_rnn uncached": ("char_rnn", False, False),
}
RECIPES = {"evolve_meter": os.path.join(HERE, "..", "models", "evolve_meter"),
           "evolve_arithmetic": os.path.join(HERE, "..", "models", "evolve_arithmetic")}


def best_of(fn, repeats: int = 3) -> float:
    fn()  # warm-up: traces and compiles
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_case(name: str, new: int) -> list[dict]:
    import numpy as np
    import tensorflow as tf

    import keras_selfevo as kse

    if name == "keras-hub":
        return _keras_hub(new)
    model_name, use_cache, jit = CASES[name]
    size = GPT_SIZE if model_name == "gpt" else {"embed_dim": 64, "units": 256}
    model = kse.zoo.build(model_name, vocab_size=VOCAB, seed=0, **size)
    rows = []
    for batch in BATCHES:
        prompt = np.full((batch, 1), kse.data.text.BOS, np.int32)
        seconds = best_of(lambda: model.generate_ids(  # noqa: B023
            prompt, new, 1.0, seed=tf.constant([0, 1]), use_cache=use_cache,  # noqa: B023
            jit_compile=jit).numpy())
        rows.append({"case": name, "batch": batch, "tokens_per_second": batch * new / seconds,
                     "seconds": seconds})
    return rows


def _keras_hub(new: int) -> list[dict]:
    import keras_hub
    import numpy as np

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB, num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512,
        max_sequence_length=new + 1, dropout=0.0)
    causal_lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    rows = []
    for batch in BATCHES:
        inputs = {"token_ids": np.zeros((batch, new + 1), np.int32),
                  "padding_mask": np.zeros((batch, new + 1), bool)}
        inputs["padding_mask"][:, 0] = True  # a 1-token prompt, then `new` tokens to fill
        seconds = best_of(lambda: causal_lm.generate(inputs, stop_token_ids=None))  # noqa: B023
        rows.append({"case": "keras-hub GPT2CausalLM", "batch": batch,
                     "tokens_per_second": batch * new / seconds, "seconds": seconds})
    return rows


def run_anchor(new: int) -> list[dict]:
    if not os.path.exists(ANCHOR_PYTHON):
        print("(nanoGPT anchor skipped: no .anchor-venv)", file=sys.stderr)
        return []
    out = subprocess.run([ANCHOR_PYTHON, ANCHOR, "--new", str(new), "--vocab", str(VOCAB)],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for batch, rate, seconds in re.findall(r"batch (\d+): ([\d,]+) tokens/s \(([\d.]+) s\)", out):
        rows.append({"case": "nanoGPT generate", "batch": int(batch),
                     "tokens_per_second": float(rate.replace(",", "")),
                     "seconds": float(seconds)})
    return rows


def run_loop(recipe: str, fast: bool) -> dict:
    import keras
    import numpy as np

    from keras_selfevo.evolve import SelfEvolution
    from keras_selfevo.recipes import evolve

    # Untrained models: an untrained model's sums are rarely right, so the arithmetic loop
    # keeps every sample here (the card's pretrained model keeps ~99% of them).
    overrides = {"pretrain_epochs": 0, "keep": "all"}
    if not fast:  # the train step as it was compiled before (the recipe may now use XLA)
        overrides["jit_compile"] = False
    config = evolve.load_evolve_recipe(RECIPES[recipe], overrides)
    keras.utils.set_random_seed(config["seed"])
    environment = evolve.ENVIRONMENTS[config["environment"]](config)
    model = evolve.compiled_model(config, environment, float(config["alpha"]))
    model.sampling_jit_compile = fast
    if not fast and hasattr(model, "body") and hasattr(model.body, "unroll"):
        model.body.unroll = False  # the recurrent loop as it ran before "auto" unrolling
    if not fast:  # the code path sampling had before the cache
        generate_ids = model.generate_ids
        model.generate_ids = lambda *a, **k: generate_ids(*a, **{**k, "use_cache": False})
    seconds = {"sampling": [], "scoring": [], "training": []}

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            seconds[key].append(time.perf_counter() - start)
            return result
        return wrapper

    environment.act = timed(environment.act, "sampling")
    environment.reward = timed(environment.reward, "scoring")
    model.fit = timed(model.fit, "training")
    loop_keys = ("samples_per_generation", "samples_per_observation", "epochs_per_generation",
                 "batch_size", "temperature", "keep", "min_reward", "seed")
    loop = SelfEvolution(model, environment, **{key: config[key] for key in loop_keys})
    start = time.perf_counter()
    loop.run(GENERATIONS, verbose=0)
    total = time.perf_counter() - start
    # Generation 0 (before any update) samples and scores too; generation 1 traces and
    # compiles. The medians of generations 2 onwards.
    row = {"recipe": recipe, "path": "cache + XLA" if fast else "before (uncached, no XLA)"}
    row.update({key: float(np.median(values[-(GENERATIONS - 1):]))
                for key, values in seconds.items()})
    row["generation_seconds"] = sum(row[key] for key in seconds)
    row["run_seconds"] = total
    return row


def _in_process(part: str, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, __file__, "--case", json.dumps([part, *args])],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    args = parse_args(__doc__, options={"--parts": "tokens,loop (default: both)",
                                        "--recipes": "the loop part's recipes (default: "
                                                     "evolve_meter,evolve_arithmetic)",
                                        "--case": "internal: run one case in this process"})
    if args.case:
        part, *rest = json.loads(args.case)
        if part == "tokens":
            rows = run_case(rest[0], int(rest[1]))
        else:
            rows = [run_loop(rest[0], rest[1] == "fast")]
        print(json.dumps(rows))
        return
    new = 100 if args.quick else NEW
    parts = (args.parts or "tokens,loop").split(",")
    if "tokens" in parts:
        rows = run_anchor(new)
        for name in ("keras-hub", *CASES):
            rows += _in_process("tokens", name, str(new))
        anchor = {row["batch"]: row["tokens_per_second"] for row in rows
                  if row["case"] == "nanoGPT generate"}
        for row in rows:
            row["vs_nanoGPT"] = (row["tokens_per_second"] / anchor[row["batch"]]
                                 if row["batch"] in anchor else float("nan"))
        report("generate_throughput", rows, new_tokens=new)
    if "loop" in parts:
        recipes = args.recipes.split(",") if args.recipes else list(RECIPES)
        rows = [row for recipe in recipes for path in ("slow", "fast")
                for row in _in_process("loop", recipe, path)]
        report("evolve_generation_time", rows)


if __name__ == "__main__":
    main()
