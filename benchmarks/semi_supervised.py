"""Few labels or rewards on real digits: what the self-loss on the unlabeled images gives.

On ``selfevo_digits`` (scikit-learn's load_digits at 28×28, 1,442 train / 355 test), with
labels kept on 1%, 5% and 10% of the training images (stratified, chosen by the seed), seeds
0-4, each in this process:

- ``keras-selfevo train models/semi_supervised_digits`` (the combined objective: the
  self-loss on every image, the policy term on the labeled ones, one ``fit``);
- the same recipe with ``alpha`` 0 (supervised-only on the labeled part: same network,
  batches and steps, the self-loss switched off);
- plain Keras on the labeled part (the same network without the self head, cross-entropy,
  Adam 1e-3, as many steps of ``labeled_per_batch`` images);
- plain Keras with every label (the ceiling);

and, at 5% labels, other ways to spend the unlabeled images (``ABLATIONS``).

And the bandit: ``keras-selfevo evolve models/evolve_bandit_glyphs`` on digits with 5% of
the images ever rewarded and semi_supervised_digits' network: the consistency self-loss on
every image (the never-rewarded ones join each generation as half of its rows; alpha 0 ->
0.5) against the same loop with alpha 0 on the rewarded images alone. Reports means,
differences and paired 95% t-intervals; writes ``results/semi_supervised.json``.

    python benchmarks/semi_supervised.py [--quick] [--parts train,ablations,bandit,bandit_losses]
        [--fractions 0.05,0.1] [--seeds 0-4]
"""

import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402
from self_loss_cost import plain_cnn  # noqa: E402

MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
RECIPE = os.path.join(MODELS, "semi_supervised_digits")
BANDIT = os.path.join(MODELS, "evolve_bandit_glyphs")
FRACTIONS = (0.01, 0.05, 0.10)
# Other ways to spend the unlabeled images (5% labels), each against supervised-only.
_RECONSTRUCT = {"filters": 32, "units": 64, "mask_rate": 0.25, "decoder": "conv",
                "policy_input": "clean"}
_SOFT = {"filters": 32, "units": 64, "self_task": "consistency", "mask_rate": 0.25}
ABLATIONS = {
    "masked reconstruction (conv decoder, the earlier recipe's self head), alpha 0.3 -> 0": {
        "model_args": _RECONSTRUCT, "alpha": 0.3, "alpha_end": 0.0},
    "consistency toward the clean prediction itself (no threshold), alpha 0 -> 0.5": {
        "model_args": _SOFT, "masked_self_loss": False},
    "pseudo-labels at 0.9 confidence": {"model_args": {**_SOFT, "confidence": 0.9}},
    "pseudo-labels, alpha 0.5 from the first step": {"alpha": 0.5, "alpha_end": 0.5},
}


def _config() -> dict:
    with open(os.path.join(RECIPE, "config.json")) as handle:
        return json.load(handle)


def recipe(data_dir: str, seed: int, fraction: float, **overrides) -> float:
    """Test accuracy of the recipe with labels on ``fraction`` of the training images."""
    from keras_selfevo.recipes.train import train

    with tempfile.TemporaryDirectory() as output:
        result = train(RECIPE, output, data_dir=data_dir, verbose=0,
                       overrides={"seed": seed, "labeled_fraction": fraction, **overrides})
    return float(result["history"]["val_categorical_accuracy"][-1])


def plain_keras(x, y, xt, yt, seed: int, steps: int, batch_size: int) -> float:
    """The recipe's network without the self head, trained with cross-entropy."""
    import tensorflow as tf

    model = plain_cnn(x.shape[1:], seed)
    batches = (tf.data.Dataset.from_tensor_slices((x, y)).repeat()
               .shuffle(len(x), seed=seed).batch(batch_size))
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return float(model.evaluate(xt, yt, verbose=0)[1])


# The bandit arms share semi_supervised_digits' network (the consistency self head) and
# differ only in the self-loss: on every image (the rewarded ones and, as half of each
# generation's rows, the never-rewarded ones; alpha 0 -> 0.5 along a cosine, as that
# recipe) or off (alpha 0, rewarded images only).
BANDIT_NETWORK = {"filters": 32, "units": 64, "self_task": "consistency", "mask_rate": 0.25,
                  "confidence": 0.7}
BANDIT_SELF = {"alpha": 0.0, "alpha_end": 0.5, "unrewarded_fraction": 0.5}


def bandit(data_dir: str, seed: int, fraction: float, self_loss: bool, generations: int,
           reinforce_loss: str = "squared") -> float:
    """Final held-out accuracy of the bandit loop with ``fraction`` of the images rewarded."""
    from keras_selfevo.recipes.evolve import evolve

    overrides = {"dataset": "selfevo_digits", "seed": seed, "rewarded_fraction": fraction,
                 "baseline": False, "pretrain_epochs": 0, "model_args": BANDIT_NETWORK,
                 "reinforce_loss": reinforce_loss,
                 **(BANDIT_SELF if self_loss else {"alpha": 0.0})}
    with tempfile.TemporaryDirectory() as output:
        result = evolve(BANDIT, output, generations=generations, data_dir=data_dir,
                        overrides=overrides, verbose=0)
    return float(result["history"][-1]["accuracy"])


def paired_interval(ours, theirs) -> tuple[float, float]:
    """Mean of the per-seed differences and the half-width of its 95% t-interval.

    Paired: seed ``s`` of both arms keeps labels on the same images and starts from the
    same initial weights, so the seed's own luck cancels in the difference.
    """
    from scipy import stats

    differences = np.asarray(ours) - np.asarray(theirs)
    half = stats.t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1)
    return float(differences.mean()), float(half / np.sqrt(len(differences)))


def _row(part, name, values, reference=None):
    row = {"part": part, "model": name, "test accuracy": float(np.mean(values))}
    if reference is None:
        row.update({"minus reference": 0.0, "95% CI": ""})
    else:
        mean, half = paired_interval(values, reference)
        row.update({"minus reference": mean,
                    "95% CI": f"[{mean - half:+.4f}, {mean + half:+.4f}]"})
    row["per seed"] = " ".join(f"{a:.4f}" for a in values)
    print(row, flush=True)
    return row


def main():
    args = parse_args(__doc__, options={
        "--parts": "some of train,ablations,bandit,bandit_losses (default: the first three)",
        "--fractions": "label shares of the train part, e.g. 0.05,0.1 (default: 0.01,0.05,0.1); "
                       "of bandit_losses, 0.05 and/or 1.0 (default: both)",
        "--seeds": "first-last seeds, e.g. 5-9 (default: 0-4; --quick: 0-1)"})
    from keras_selfevo import data
    from keras_selfevo.recipes.data import labeled_subset

    parts = (args.parts or "train,ablations,bandit").split(",")
    fractions = ([float(f) for f in args.fractions.split(",")] if args.fractions
                 else FRACTIONS)
    first, last = map(int, (args.seeds or ("0-1" if args.quick else "0-4")).split("-"))
    seeds = list(range(first, last + 1))
    data_dir = tempfile.mkdtemp(prefix="semi-supervised-")
    split = {name: data.load("selfevo_digits", split=name, data_dir=data_dir, batch_size=-1)
             for name in ("train", "test")}
    x, y = split["train"]["image"].numpy() / 255.0, split["train"]["label"].numpy()
    xt, yt = split["test"]["image"].numpy() / 255.0, split["test"]["label"].numpy()
    config = _config()
    per_batch, batch_size = config["labeled_per_batch"], config["batch_size"]
    rows = []
    if "train" in parts:
        for fraction in fractions:
            part = f"{fraction:.0%} labels"
            ours, alone, plain = [], [], []
            for seed in seeds:
                keep = labeled_subset(y, fraction, seed)
                # The recipe's steps: an epoch is a pass over the unlabeled images.
                steps = config["epochs"] * ((len(y) - len(keep)) // (batch_size - per_batch))
                ours.append(recipe(data_dir, seed, fraction))
                alone.append(recipe(data_dir, seed, fraction, alpha=0.0, alpha_end=0.0))
                plain.append(plain_keras(x[keep], y[keep], xt, yt, seed, steps,
                                         min(per_batch, len(keep))))
            rows.append(_row(part, "supervised only (the recipe, alpha 0)", alone))
            rows.append(_row(part, "semi_supervised_digits recipe", ours, alone))
            rows.append(_row(part, "plain Keras on the labeled part", plain, alone))
    if "train" in parts and not args.fractions:
        full = [plain_keras(x, y, xt, yt, seed, 5 * (len(y) // 64), 64) for seed in seeds]
        rows.append(_row("100% labels", "plain Keras, 5 epochs", full))
    if "ablations" in parts:
        alone = [recipe(data_dir, seed, 0.05, alpha=0.0, alpha_end=0.0) for seed in seeds]
        rows.append(_row("5% labels", "supervised only (the recipe, alpha 0)", alone))
        for name, overrides in ABLATIONS.items():
            rows.append(_row("5% labels", name, [recipe(data_dir, seed, 0.05, **overrides)
                                                 for seed in seeds], alone))
    if "bandit" in parts:
        generations = 5 if args.quick else 30
        alone = [bandit(data_dir, seed, 0.05, False, generations) for seed in seeds]
        ours = [bandit(data_dir, seed, 0.05, True, generations) for seed in seeds]
        rows.append(_row("bandit, 5% rewarded", "no self-loss (alpha 0)", alone))
        rows.append(_row("bandit, 5% rewarded", "consistency self-loss on every image "
                         "(alpha 0 -> 0.5, unrewarded images half the rows)", ours, alone))
    if "bandit_losses" in parts:
        # The two reinforce losses, paired by seed: 5% rewarded with the self-loss on every
        # image (the arm above), and every image rewarded without one.
        generations = 5 if args.quick else 30
        arms = ((0.05, True), (1.0, False))
        for fraction, self_loss in [arm for arm in arms
                                    if not args.fractions or arm[0] in fractions]:
            part = f"bandit, {fraction:.0%} rewarded"
            squared = [bandit(data_dir, seed, fraction, self_loss, generations)
                       for seed in seeds]
            likelihood = [bandit(data_dir, seed, fraction, self_loss, generations,
                                 "log_likelihood") for seed in seeds]
            rows.append(_row(part, "squared reinforce loss", squared))
            rows.append(_row(part, "log-likelihood reinforce loss", likelihood, squared))
    # Runs of some parts (or shares) in parallel processes each keep their own results.
    tags = [*parts, *(args.fractions or "").split(","), args.seeds or ""]
    suffix = "" if args.parts is None and args.fractions is None else "_" + "_".join(
        tag.replace(".", "") for tag in tags if tag)
    report("semi_supervised" + suffix, rows, seeds=seeds)


if __name__ == "__main__":
    main()
