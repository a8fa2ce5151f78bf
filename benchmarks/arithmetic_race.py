"""Our loop on a+b=c against TRL's GRPOTrainer, from the same held-out rate, on one split.

Both sides: the 8,000 training lines of `selfevo_text/arithmetic` (every pair (a, b) of
[0, 99]^2 once; the test pairs are in no training line), the first 500 test lines as
held-out prompts `a+b=`; pretraining on the training lines until one sample each of the
held-out prompts at temperature 0.8 is right at least --target of the time (checked after
every epoch here, every 100 steps in TRL's script); then completions of training prompts
`a+b=` at 0.8, a batch of 64 completions per update, the held-out prompts scored (one sample
each at 0.8, and greedy) as completions are drawn.

  TRL: `../shared/anchors/trl_grpo_arithmetic.py` in the anchor venv (a tiny Llama built
       from a config, a character tokenizer, reward 1 for an exact sum, GRPO with groups of
       8 completions of a prompt, lr 1e-4, beta 0), given this split with --train-lines /
       --test-lines.
  ours: the `evolve_arithmetic` recipe's model (char_rnn, GRU 256, its pretraining rate),
       `VerifiableGeneration(prompted=True)`, the log-likelihood reinforce loss, alpha 0 (no
       self-loss), no corpus rows, every sample kept, updates of 64, with one of two
       weightings (``--weighting``):
       filter (default): the recipe's own, w = 1[r >= 1] (the correct completions' log-
           likelihood: RAFT / ReST / expert iteration), one completion of each of 2,048
           distinct training prompts a generation, the recipe's 2 epochs on them and its
           loop rate, Adam 5e-4;
       grpo: TRL's, groups of 8 completions of a prompt, 256 prompts a generation, one
           epoch on them, scored at the sampling temperature as TRL's
           (`score_at_temperature`), Adam at TRL's 1e-4 (5e-4 collapses here, as TRL's
           degrades at 5e-4).

Each side runs in its own process, TRL first; the table gives the held-out rates at matching
counts of completions drawn and each side's completions per second of its loop.

    python benchmarks/arithmetic_race.py [--quick] [--completions 100000] [--target 0.8]
        [--weighting filter|grpo] [--lr 5e-4] [--prompts 2048] [--normalize sequence]
        [--parts trl,ours] [--seed 0] [--set KEY=JSON ...]

``--seed`` seeds both sides (TRL's `--seed`; our recipe's `seed`: initial weights, data
order, sampling).

``--set`` changes a key of our side's recipe (e.g. ``--set temperature=1.0``, or
``--set model=gpt --set 'model_args={"num_layers": 2, ...}'``), as ``keras-selfevo evolve``
does; values are JSON (a bare word is a string).
The race's length is our loop's ``generations``, so ``--set evolve_min_learning_rate=0``
decays the rate on a cosine to 0 over the race (with ``--set epochs_per_generation=4``: the
strongest side measured within TRL's speed, benchmarks/README.md).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(HERE, "..", "models", "evolve_arithmetic")
ANCHOR = os.path.join(HERE, "..", "..", "shared", "anchors", "trl_grpo_arithmetic.py")
ANCHOR_PYTHON = os.path.join(HERE, "..", ".anchor-venv", "bin", "python")
GROUP, HELD_OUT = 8, 500
# Our side's weightings: recipe keys, Adam rate, prompts a generation.
WEIGHTINGS = {
    "filter": ({"reward_weighting": "filter", "reward_threshold": 1.0,
                "samples_per_observation": 1, "epochs_per_generation": 2,
                "score_at_temperature": False}, 5e-4, 2048),
    "grpo": ({"reward_weighting": "grpo", "samples_per_observation": GROUP,
              "epochs_per_generation": 1, "score_at_temperature": True}, 1e-4, 256),
}


def write_split(folder: str) -> tuple[str, str]:
    """The training lines and the held-out test lines, one `a+b=c` a line."""
    from keras_selfevo.recipes import data

    paths = []
    for split, count in (("train", None), ("test", HELD_OUT)):
        lines = data.texts("selfevo_text/arithmetic", split, os.path.join(folder, "tfds"))
        path = os.path.join(folder, f"{split}.txt")
        with open(path, "w") as handle:
            handle.write("\n".join(lines[:count]) + "\n")
        paths.append(path)
    return paths[0], paths[1]


def run_trl(train: str, test: str, completions: int, out: str, seed: int) -> list[dict]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    command = [ANCHOR_PYTHON, ANCHOR, "--train-lines", train, "--test-lines", test,
               "--pretrain-steps", "9000", "--pretrain-eval-every", "100",
               "--grpo-completions", str(completions), "--eval-every-completions", "2048",
               "--num-generations", str(GROUP), "--batch-size", "64", "--lr", "1e-4",
               "--beta", "0.0", "--max-wall-s", "900", "--seed", str(seed), "--out", out]
    subprocess.run(command, check=True, env=env)
    with open(os.path.join(out, "results.json")) as handle:
        return json.load(handle)


def run_ours(completions: int, target: float, weighting: str, rate: float, prompts: int,
             normalize: str, seed: int, settings: dict | None = None) -> dict:
    import keras

    from keras_selfevo.evolve import SelfEvolution
    from keras_selfevo.recipes import evolve

    config = evolve.load_evolve_recipe(RECIPE, {
        "prompted": True, "reinforce_loss": "log_likelihood", **WEIGHTINGS[weighting][0],
        "alpha": 0.0, "corpus_fraction": 0.0, "keep": "all", "evolve_learning_rate": rate,
        "samples_per_generation": prompts, "held_out_prompts": HELD_OUT,
        "reinforce_normalize": normalize, "seed": seed,
        **(settings or {})})
    per_generation = prompts * config["samples_per_observation"]
    # The loop's length, which an `evolve_min_learning_rate` schedule spans.
    config["generations"] = generations = -(-completions // per_generation)
    keras.utils.set_random_seed(config["seed"])
    environment = evolve.ENVIRONMENTS["generation"](config)
    model = evolve.compiled_model(config, environment, 1.0)
    pretraining = environment.pretraining_data(config["batch_size"], config["seed"])
    evolve.recompile(model, config, 1.0, pretraining=True)  # the recipe's pretraining rate
    start, epochs = time.perf_counter(), 0
    while True:  # pretraining epochs until the held-out rate at 0.8 reaches the target
        model.fit(**pretraining, epochs=1, verbose=0)
        epochs += 1
        sampled = environment.completion_rate(model, environment.held_out,
                                              environment.EVALUATION_TEMPERATURE)
        print(f"[ours] pretraining epoch {epochs}: held-out at 0.8 {sampled:.3f}", flush=True)
        if sampled >= target or epochs >= 200:
            break
    pretraining_seconds = time.perf_counter() - start
    evolve.recompile(model, config, config["alpha"],  # alpha 0 unless --set alpha=...
                     environment=environment)
    loop = SelfEvolution(model, environment, **{
        key: config[key] for key in ("samples_per_generation", "samples_per_observation",
                                     "epochs_per_generation", "batch_size", "temperature",
                                     "keep", "seed")})
    rows, clock = [], {"loop": 0.0}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, generation, logs=None):
            rows.append({"completions": generation * per_generation,
                         "valid_T08": logs["held_out_sampled"],
                         "valid_greedy": logs["held_out_valid"],
                         "train_valid": logs["valid_rate"],
                         "wall": time.perf_counter() - clock["start"]})
            print(f"[ours] {rows[-1]}", flush=True)

    clock["start"] = time.perf_counter()
    loop.run(generations, callbacks=[Record()], verbose=0)
    return {"pretraining_epochs": epochs, "pretraining_seconds": pretraining_seconds,
            "curve": rows}


def main() -> None:
    args = parse_args(__doc__, options={
        "--completions": "completions each side draws (default: 100000; --quick: 4096)",
        "--target": "held-out rate at 0.8 that ends pretraining (default: 0.8)",
        "--weighting": "our side's: filter (default) or grpo",
        "--lr": "our loop's Adam rate (default: filter 5e-4, grpo 1e-4 as TRL's)",
        "--parts": "trl,ours (default: both)",
        "--prompts": "our prompts per generation (default: filter 2048, grpo 256 x 8)",
        "--normalize": "our log-likelihood's normalisation: sequence (default) or token",
        "--seed": "seeds both sides (default: 0)",
        "--case": "internal: run our side in this process"},
        repeated={"--set": "KEY=JSON: a recipe key of our side"})
    completions = int(args.completions or (4096 if args.quick else 100_000))
    target = float(args.target or 0.8)
    weighting = args.weighting or "filter"
    if weighting not in WEIGHTINGS:
        raise SystemExit(f"--weighting must be one of {sorted(WEIGHTINGS)}, got {weighting!r}")
    rate = float(args.lr or WEIGHTINGS[weighting][1])
    prompts = int(args.prompts or WEIGHTINGS[weighting][2])
    normalize = args.normalize or "sequence"
    seed = int(args.seed or 0)
    if args.case:
        from keras_selfevo.cli import _key_value  # the CLI's reading of --set KEY=VALUE

        print(json.dumps(run_ours(completions, target, weighting, rate, prompts, normalize,
                                  seed, dict(map(_key_value, args.set)))))
        return
    parts = (args.parts or "trl,ours").split(",")
    folder = tempfile.mkdtemp(prefix="arithmetic-race-")
    results = {}
    if "trl" in parts:
        # The split is written by a process of its own (TensorFlow stays out of this one).
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {HERE!r}); "
                        f"import arithmetic_race; arithmetic_race.write_split({folder!r})"],
                       check=True)
        results["TRL GRPOTrainer"] = run_trl(os.path.join(folder, "train.txt"),
                                             os.path.join(folder, "test.txt"), completions,
                                             os.path.join(folder, "trl"), seed)
    if "ours" in parts:
        out = subprocess.run([sys.executable, __file__, "--case", "ours", "--completions",
                              str(completions), "--target", str(target),
                              "--weighting", weighting, "--lr", str(rate),
                              "--prompts", str(prompts), "--normalize", normalize,
                              "--seed", str(seed),
                              *[f"--set={pair}" for pair in args.set]],
                             check=True, capture_output=True, text=True)
        sys.stderr.write(out.stderr[-2000:])
        results["keras-selfevo"] = json.loads(out.stdout.strip().splitlines()[-1])
    rows = []
    for name, result in results.items():
        # TRL's script records {"grpo": [...]} with wall_s; ours {"curve": [...]} with wall.
        for point in result.get("curve", result.get("grpo", [])):
            wall = point.get("wall", point.get("wall_s"))
            rows.append({"side": name, "completions": point["completions"],
                         "valid_T08": point["valid_T08"], "valid_greedy": point["valid_greedy"],
                         "train_valid": point.get("train_valid"),
                         "wall_s": wall,
                         "completions_per_s": point["completions"] / wall if wall else 0.0})
    report("arithmetic_race", rows, results=results)


if __name__ == "__main__":
    main()
