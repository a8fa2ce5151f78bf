"""What the self-loss costs with all labels: the mnist_cnn recipe against plain Keras.

On real handwritten digits (``selfevo_digits``: scikit-learn's load_digits at 28×28, 1,442
train / 355 test) and on ``selfevo_glyphs/classify10``, for seeds 0-4: plain Keras on the
recipe's network without the self head (Conv 32 3×3 → MaxPool 2 → Dense 64 → softmax,
Adam 1e-3, batch 64, 5 epochs, cross-entropy), and ``keras-selfevo train models/mnist_cnn``
with its settings and with the earlier ones, plus (on digits) the ablations that locate the
cost, plain Keras at the recipe's learning rate, and the consistency self-loss of
``semi_supervised_digits`` with every label. ``--only A,B`` runs just the variants whose
name contains A or B (plain Keras always runs), ``--datasets`` one of the two. Reports the
mean test accuracy, its difference from plain Keras and a 95% t-interval of that
difference (Welch). Writes ``results/self_loss_cost.json``.

    python benchmarks/self_loss_cost.py [--quick] [--only consistency]
        [--datasets selfevo_digits]
"""

import os
import re
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                      "mnist_cnn")
# Each variant sets its learning rate: the recipe's is not the earlier recipes' 1e-3.
BEFORE = {"model_args": {"filters": 32, "units": 64, "mask_rate": 0.25, "decoder": "dense",
                         "policy_input": "masked"}, "alpha": 0.5, "alpha_end": None,
          "learning_rate": 0.001}
_SHARED = {"filters": 32, "units": 64, "mask_rate": 0.25, "decoder": "conv",
           "policy_input": "clean"}
PREVIOUS = {"model_args": _SHARED, "alpha": 0.3, "alpha_end": 0.0, "learning_rate": 0.001}
EARLIER = "earlier recipe: dense decoder on the shared Dense 64, masked input, alpha 0.5"
ABLATIONS = {
    "previous recipe: the self-loss also trains the shared conv, alpha 0.3 -> 0, Adam 1e-3":
        PREVIOUS,
    "  same, Adam 3e-3": {**PREVIOUS, "learning_rate": 0.003},
    "  same, alpha 0 (no self-loss: squared loss on the scores alone), Adam 1e-3": {
        **PREVIOUS, "alpha": 0.0},
    "  same, alpha 0, Adam 3e-3": {**PREVIOUS, "alpha": 0.0, "learning_rate": 0.003},
    "  self head detached (the recipe's), Adam 1e-3": {"learning_rate": 0.001},
    "  the recipe with the self-loss also training the shared conv": {"model_args": _SHARED},
    "  the recipe with the log-likelihood reinforce loss (reward 1: the cross-entropy)": {
        "reinforce_loss": "log_likelihood"},
    "  the same at Adam 1e-3": {"reinforce_loss": "log_likelihood", "learning_rate": 0.001},
    EARLIER: BEFORE,
    "  same, alpha 0 (no self-loss; the input still masked)": {**BEFORE, "alpha": 0.0},
    "  same, no masking, alpha 0 (the recipe's pipeline alone)": {
        **BEFORE, "alpha": 0.0, "model_args": {**BEFORE["model_args"], "mask_rate": 0.0},
        "masked_self_loss": False},
    "  conv decoder, masked input, alpha 0.5": {
        **BEFORE, "model_args": {**BEFORE["model_args"], "decoder": "conv"}},
    "  conv decoder, clean policy input, alpha 0.5": {
        **BEFORE, "model_args": {**BEFORE["model_args"], "decoder": "conv",
                                 "policy_input": "clean"}},
}


# The consistency self-loss of semi_supervised_digits, with every label (both datasets).
_CONSISTENCY = {"filters": 32, "units": 64, "self_task": "consistency", "mask_rate": 0.25,
                "confidence": 0.7}
CONSISTENCY = {f"consistency self-loss (pseudo-labels at 0.7), alpha 0 -> {end}": {
    "model_args": _CONSISTENCY, "alpha": 0.0, "alpha_end": end, "learning_rate": 0.001}
    for end in (0.5, 0.2, 0.1)}


def plain_cnn(input_shape, seed, learning_rate=1e-3):
    """The recipe's network without its self head, compiled with cross-entropy."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(input_shape), keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def plain_keras(x, y, xt, yt, seed, epochs, learning_rate=1e-3):
    model = plain_cnn(x.shape[1:], seed, learning_rate)
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return float(model.evaluate(xt, yt, verbose=0)[1])


def recipe(dataset, data_dir, seed, epochs, overrides):
    from keras_selfevo.recipes.train import train

    with tempfile.TemporaryDirectory() as output:
        result = train(RECIPE, output, epochs=epochs, data_dir=data_dir, verbose=0,
                       overrides={"dataset": dataset, "validation_split": "test",
                                  "seed": seed, **overrides})
    return float(result["history"]["val_categorical_accuracy"][-1])


def interval(ours, theirs):
    """The difference of the means and the half-width of its 95% Welch t-interval."""
    from scipy import stats

    a, b = np.asarray(ours), np.asarray(theirs)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1) + 1e-30)
    return float(a.mean() - b.mean()), float(stats.t.ppf(0.975, dof) * np.sqrt(va + vb))


def main():
    args = parse_args(__doc__, options={
        "--only": "run only the variants whose name contains one of these comma-separated "
                  "texts (plain Keras always runs), e.g. consistency",
        "--datasets": "comma-separated datasets (default: selfevo_digits,"
                      "selfevo_glyphs/classify10)"})
    from keras_selfevo import data

    seeds = range(2 if args.quick else 5)
    epochs = 5
    data_dir = tempfile.mkdtemp(prefix="self-loss-cost-")
    rows = []
    only = args.only.split(",") if args.only else []
    datasets = (args.datasets or "selfevo_digits,selfevo_glyphs/classify10").split(",")
    for dataset in datasets:
        split = {name: data.load(dataset, split=name, data_dir=data_dir, batch_size=-1)
                 for name in ("train", "test")}
        x, y = split["train"]["image"].numpy() / 255.0, split["train"]["label"].numpy()
        xt, yt = split["test"]["image"].numpy() / 255.0, split["test"]["label"].numpy()
        plain = [plain_keras(x, y, xt, yt, seed, epochs) for seed in seeds]
        rows.append({"dataset": dataset, "model": "plain Keras (cross-entropy)",
                     "test accuracy": float(np.mean(plain)), "minus plain": 0.0,
                     "95% CI": "", "per seed": " ".join(f"{a:.4f}" for a in plain)})
        if not only or any("plain" in text for text in only):
            fast = [plain_keras(x, y, xt, yt, seed, epochs, 3e-3) for seed in seeds]
            mean, half = interval(fast, plain)
            rows.append({"dataset": dataset, "model": "  plain Keras, Adam 3e-3",
                         "test accuracy": float(np.mean(fast)), "minus plain": mean,
                         "95% CI": f"[{mean - half:+.4f}, {mean + half:+.4f}]",
                         "per seed": " ".join(f"{a:.4f}" for a in fast)})
            print(rows[-1], flush=True)
        variants = {"mnist_cnn recipe (self head detached on the conv map, clean policy "
                    "input, alpha 0.5, Adam 3e-3)": {}}
        variants.update(ABLATIONS if dataset == "selfevo_digits" else
                        {next(iter(ABLATIONS)): PREVIOUS, EARLIER: BEFORE})
        variants.update(CONSISTENCY)
        if only:
            variants = {name: value for name, value in variants.items()
                        if any(text in name for text in only)}
        for name, overrides in variants.items():
            accuracy = [recipe(dataset, data_dir, seed, epochs, overrides) for seed in seeds]
            mean, half = interval(accuracy, plain)
            rows.append({"dataset": dataset, "model": name,
                         "test accuracy": float(np.mean(accuracy)), "minus plain": mean,
                         "95% CI": f"[{mean - half:+.4f}, {mean + half:+.4f}]",
                         "per seed": " ".join(f"{a:.4f}" for a in accuracy)})
            print(rows[-1], flush=True)
    # A partial run is written beside the full one.
    suffix = ("_partial" if only else "") + "".join(
        "_" + re.sub(r"[^a-z0-9]+", "_", name) for name in datasets if args.datasets)
    report("self_loss_cost" + suffix, rows,
           seeds=list(seeds), epochs=epochs)


if __name__ == "__main__":
    main()
