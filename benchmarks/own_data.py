"""Your own data through ``--data``: the figures of the recipes on files written to disk.

Each case writes real data as a user would hold it, trains the recipe on it through
:func:`keras_selfevo.recipes.train.train` (what ``keras-selfevo train NAME --data PATH`` runs)
and compares it with the reference on the same split, over seeds:

- ``images``: scikit-learn's 1,797 digits as a PNG folder (10 class folders, the pixels of
  ``selfevo_digits``), ``mnist_cnn --data DIR --set validation_fraction=0.2`` against the same
  recipe on the built-in ``selfevo_digits`` (its 20% test split); then with a quarter of each
  class moved to ``unlabeled/`` (self-loss only);
- ``tables``: scikit-learn's wine, breast-cancer (classification) and diabetes (regression)
  tables as CSV, ``tabular --data FILE --set label=target`` against scikit-learn's
  ``LogisticRegression`` (standardised features), ``HistGradientBoostingClassifier`` and, for
  the regression, ``RidgeCV``, each fit on the recipe's own training rows and scored on its
  held-out rows;
- ``plays``: the 32 training plays as a folder of ``.md`` files, ``shakespeare_gpt --data DIR``
  against the recipe on the built-in ``selfevo_shakespeare`` (both hold out the last 10% of
  each play);
- ``genre``: which genre a 512-character passage comes from (40 passages of each training
  play; the test set: 40 of each of the six held-out plays), labels kept on 5% of the training
  rows (stratified, per seed; the others left empty: self-loss only), ``text_classifier`` with
  the ``gpt`` body from scratch against the same body starting from ``--pretrained`` (a
  ``shakespeare_gpt`` checkpoint, which never saw the held-out plays); paired 95% t-interval.

    python benchmarks/own_data.py images|tables|plays|genre [--seeds 0-4]
        [--pretrained shakespeare_gpt] [--epochs N]

Writes ``results/own_data_<case>.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import report  # noqa: E402
from semi_supervised import paired_interval  # noqa: E402


def _train(recipe: str, output: str, **overrides):
    from keras_selfevo.recipes import catalog
    from keras_selfevo.recipes.train import train

    return train(catalog.locate(recipe), output, verbose=0, overrides=overrides)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def _row(case: str, model: str, values: list[float], metric: str, reference=None) -> dict:
    row = {"case": case, "model": model, metric: float(np.mean(values))}
    if reference is None:
        row["minus reference [95% CI]"] = "—"
    else:
        mean, half = paired_interval(values, reference)
        row["minus reference [95% CI]"] = f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}]"
    row["per seed"] = " ".join(f"{v:.4f}" for v in values)
    print(row, flush=True)
    return row


def images(work: str, seeds: list[int]) -> list[dict]:
    """mnist_cnn on a PNG folder of the digits against the built-in selfevo_digits."""
    import tensorflow as tf

    from keras_selfevo.data.digits import digit_images

    pixels, labels = digit_images()
    folder = os.path.join(work, "digits")
    for index, (image, label) in enumerate(zip(pixels, labels)):
        os.makedirs(os.path.join(folder, str(label)), exist_ok=True)
        tf.io.write_file(os.path.join(folder, str(label), f"{index:04d}.png"),
                         tf.io.encode_png(image))
    quarter = os.path.join(work, "digits_quarter")
    shutil.copytree(folder, quarter)
    os.makedirs(os.path.join(quarter, "unlabeled"))
    for label in range(10):
        names = sorted(os.listdir(os.path.join(quarter, str(label))))
        for name in names[::4]:
            os.rename(os.path.join(quarter, str(label), name),
                      os.path.join(quarter, "unlabeled", f"{label}_{name}"))
    runs = {"built-in selfevo_digits (test split, 355)": [],
            "PNG folder, --data (20% held out)": [],
            "PNG folder, a quarter under unlabeled/": []}
    for seed in seeds:
        for name, overrides in zip(runs, (
                {"dataset": "selfevo_digits", "validation_split": "test"},
                {"data": folder, "validation_fraction": 0.2},
                {"data": quarter, "validation_fraction": 0.2})):
            with tempfile.TemporaryDirectory() as output:
                result = _train("mnist_cnn", output, seed=seed, **overrides)
            runs[name].append(float(result["history"]["val_categorical_accuracy"][-1]))
            print(name, seed, runs[name][-1], flush=True)
    reference = runs["built-in selfevo_digits (test split, 355)"]
    return [_row("digits", name, values, "validation accuracy",
                 None if values is reference else reference) for name, values in runs.items()]


def _write_csv(path: str, header: list[str], rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _features(arrays: dict, info: dict) -> np.ndarray:
    from keras_selfevo.data.table import input_name

    return np.concatenate([arrays["x"][input_name(c)] for c in info["numeric"]], axis=1)


def tables(work: str, seeds: list[int]) -> list[dict]:
    """The tabular recipe against scikit-learn on the recipe's own split of each table."""
    from sklearn import datasets
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from keras_selfevo.data.table import read_table

    rows = []
    for name, loader in (("wine", datasets.load_wine),
                         ("breast_cancer", datasets.load_breast_cancer),
                         ("diabetes", datasets.load_diabetes)):
        bunch = loader()
        path = os.path.join(work, f"{name}.csv")
        _write_csv(path, list(bunch.feature_names) + ["target"],
                   (list(x) + [y] for x, y in zip(bunch.data, bunch.target)))
        regression = name == "diabetes"
        metric = "validation R²" if regression else "validation accuracy"
        baselines = ({"RidgeCV (standardised)": lambda: make_pipeline(StandardScaler(), RidgeCV(
                          alphas=np.logspace(-3, 3, 13))),
                      "HistGradientBoostingRegressor": lambda s: HistGradientBoostingRegressor(
                          random_state=s)}
                     if regression else
                     {"LogisticRegression (standardised)": lambda: make_pipeline(
                          StandardScaler(), LogisticRegression(max_iter=5000)),
                      "HistGradientBoostingClassifier": lambda s: HistGradientBoostingClassifier(
                          random_state=s)})
        scores = {"tabular recipe": [], **{b: [] for b in baselines}}
        for seed in seeds:
            with tempfile.TemporaryDirectory() as output:
                result = _train("tabular", output, data=path, label="target", seed=seed)
            scores["tabular recipe"].append(result["summary"][
                "validation_r2" if regression else "validation_accuracy"])
            data = read_table(path, label="target", validation_fraction=0.1, seed=seed)
            x, xv = _features(data.train, data.info), _features(data.validation, data.info)
            y, yv = data.train["label"], data.validation["label"]
            for baseline, make in baselines.items():
                model = make(seed) if "Boosting" in baseline else make()
                model.fit(x, y)
                predicted = model.predict(xv)
                scores[baseline].append(float(r2_score(yv, predicted) if regression
                                              else np.mean(predicted == yv)))
            print(name, seed, {k: v[-1] for k, v in scores.items()}, flush=True)
        reference = scores["tabular recipe"]
        rows += [_row(name, model, values, metric, None if model == "tabular recipe"
                      else reference) for model, values in scores.items()]
    return rows


def plays(work: str, seeds: list[int]) -> list[dict]:
    """shakespeare_gpt on a folder of the training plays against the built-in dataset."""
    from keras_selfevo.data import shakespeare

    folder = os.path.join(work, "plays")
    os.makedirs(folder)
    train = dict(shakespeare.split_parts("train"))
    for name, tail in shakespeare.split_parts("validation"):
        with open(os.path.join(folder, name.replace("/", "_") + ".md"), "w",
                  encoding="utf-8") as handle:
            handle.write(train[name] + tail)
    runs = {"built-in selfevo_shakespeare": [], "folder of .md files, --data": []}
    for seed in seeds:
        for name, overrides in zip(runs, ({}, {"data": folder})):
            with tempfile.TemporaryDirectory() as output:
                result = _train("shakespeare_gpt", output, seed=seed, **overrides)
            runs[name].append(float(result["summary"]["validation_nats_per_char"]))
            print(name, seed, runs[name][-1], flush=True)
    reference = runs["built-in selfevo_shakespeare"]
    return [_row("plays", name, values, "validation nats/char",
                 None if values is reference else reference) for name, values in runs.items()]


def _passages(split: str, per_play: int, seed: int) -> list[tuple[str, str]]:
    from keras_selfevo.data import shakespeare

    rng = np.random.default_rng(seed)
    texts: dict[str, str] = {}
    for name, text in shakespeare.split_parts(split):
        texts[name] = texts.get(name, "") + text
    if split == "train":
        for name, text in shakespeare.split_parts("validation"):
            texts[name] += text
    rows = []
    for name, text in sorted(texts.items()):
        for start in rng.integers(0, len(text) - 512, per_play):
            rows.append((text[start:start + 512], name.split("/")[0]))
    return rows


def genre(work: str, seeds: list[int], pretrained: str, epochs: int | None) -> list[dict]:
    """The text_classifier recipe with 5% labels: the gpt body from scratch or pretrained."""
    import json

    from keras_selfevo import presets
    from keras_selfevo.data.own_data import stratified_split
    from keras_selfevo.data.text_files import read_labelled_texts
    from keras_selfevo.recipes import catalog
    from keras_selfevo.zoo import load_checkpoint

    if not os.path.isfile(pretrained) and not presets.is_preset(pretrained):
        raise FileNotFoundError(f"--pretrained {pretrained!r} is neither a checkpoint nor a "
                                "preset: train one with `keras-selfevo train shakespeare_gpt`.")
    with open(os.path.join(catalog.locate("shakespeare_gpt"), "config.json")) as handle:
        body_args = json.load(handle)["model_args"]
    train_rows, test_rows = _passages("train", 40, 0), _passages("test", 40, 1)
    test_path = os.path.join(work, "genre_test.csv")
    _write_csv(test_path, ["text", "genre"], test_rows)
    genres = np.array([g for _, g in train_rows])
    classes = sorted(set(genres))
    runs = {"gpt body from scratch": [], "gpt body from shakespeare_gpt": []}
    for seed in seeds:
        keep = stratified_split(np.array([classes.index(g) for g in genres]), 0.05, seed)
        path = os.path.join(work, f"genre_train_{seed}.csv")
        _write_csv(path, ["text", "genre"],
                   ((t, g if k else "") for (t, g), k in zip(train_rows, keep)))
        for name, overrides in zip(runs, (
                {"model_args": {"body": "gpt", "body_args": body_args}},
                {"pretrained": pretrained})):
            with tempfile.TemporaryDirectory() as output:
                _train("text_classifier", output, data=path, text="text", label="genre",
                       seed=seed, **overrides, **({"epochs": epochs} if epochs else {}))
                model = load_checkpoint(os.path.join(output, "checkpoint.keras"))
            test = read_labelled_texts(test_path, text_column="text", label="genre",
                                       vocabulary=model.language_model.vocabulary,
                                       validation_fraction=0.5)
            ids = np.concatenate([test.train["x"], test.validation["x"]])
            labels = np.concatenate([test.train["label"], test.validation["label"]])
            out = model.predict(ids, batch_size=128, verbose=0)
            scores = np.asarray(out["policy"] if isinstance(out, dict) else out)
            runs[name].append(float(np.mean(scores.argmax(-1) == labels)))
            print(name, seed, runs[name][-1], flush=True)
    reference = runs["gpt body from scratch"]
    return [_row("genre, 5% labels", name, values, "held-out plays accuracy",
                 None if values is reference else reference) for name, values in runs.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=("images", "tables", "plays", "genre"))
    parser.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,2")
    parser.add_argument("--epochs", type=int, help="genre: text_classifier epochs (default: "
                        "the recipe's)")
    parser.add_argument("--pretrained", default="shakespeare_gpt",
                        help="the genre case's language model: the shakespeare_gpt preset "
                        "(default) or a checkpoint of its recipe")
    args = parser.parse_args()
    seeds = _seeds(args.seeds)
    with tempfile.TemporaryDirectory() as work:
        if args.case == "genre":
            rows = genre(work, seeds, args.pretrained, args.epochs)
        else:
            rows = {"images": images, "tables": tables, "plays": plays}[args.case](work, seeds)
    report(f"own_data_{args.case}", rows, seeds=seeds)


if __name__ == "__main__":
    main()
