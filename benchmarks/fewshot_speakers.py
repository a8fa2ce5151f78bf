"""Few-shot speaker identification on held-out plays: fine-tuning, prototypes, meta-learning.

Tasks: ``kse.data.speaker_tasks`` (5 speakers of one play, K = 1 or 5 speeches each as
support, 5 others each as queries, speeches cut to 128 characters). Every arm is scored on
the same held-out-play tasks (the six test plays; no character of them is seen before), so
arms compare paired by task. Arms, all from the ``shakespeare_gpt`` preset's body unless
named "scratch":

- ``prototypes``: class means of the body's features (its mean final state over a speech),
  each query labelled by the nearest mean; no training. The distance (squared Euclidean,
  cosine, or cosine after subtracting the task's mean support feature) is chosen on tasks of
  the training plays.
- ``finetune``: a fresh softmax head (zero weights) and, if chosen, the top block, trained on
  the support set by SGD; which layers, the step size and the steps are chosen on tasks of the
  training plays.
- ``maml``, ``anil``, ``metasgd``: MetaLearner meta-trained on training-play tasks. The
  embedding and the lower blocks stay frozen; MAML and Meta-SGD adapt the head, the top
  block and the final norm in the inner loop, ANIL the head only (its outer loop trains all
  three). The self-loss (next-token log-likelihood of the task's own speeches) is added to
  the task loss with weight 0.5 (``self_loss_weight``).
- ``<algorithm>_scratch``: the same meta-learner on a randomly initialised body of the same
  size, every layer trained by the outer loop.

Each arm runs in its own process (``--arm NAME --shots K``) and appends its per-task query
accuracies to results/fewshot_speakers.json; ``--report`` prints every arm's accuracy with
a 95% interval over tasks and the paired differences with the best non-meta arm.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import RESULTS_DIR  # noqa: E402

WAYS, QUERIES, LENGTH = 5, 5, 128
TEST_TASKS, PICK_TASKS = 120, 20
SELF_LOSS_WEIGHT = 0.5
META_ALGORITHMS = ("maml", "anil", "metasgd")
ARMS = ("prototypes", "finetune", *META_ALGORITHMS,
        *(f"{name}_scratch" for name in META_ALGORITHMS))
TOP = ["policy", "block3", "final_norm"]  # the layers fine-tuning may adapt
FINETUNE_GRID = [(layers, lr, steps) for layers in (["policy"], TOP)
                 for lr in (0.01, 0.1) for steps in (5, 20)]
PROTOTYPE_METRICS = ("euclidean", "cosine", "centered")
INNER_STEPS, META_LR, INNER_LR, META_BATCH = 3, 1e-3, 0.03, 2
PATH = os.path.join(RESULTS_DIR, "fewshot_speakers.json")


def _tasks(split: str, shots: int, count: int, seed: int):
    import keras_selfevo as kse

    return list(kse.data.speaker_tasks(split, WAYS, shots, QUERIES, length=LENGTH,
                                       meta_batch_size=4, num_meta_batches=count // 4,
                                       seed=seed))


def _classifier(pretrained: bool, seed: int):
    import keras_selfevo as kse

    if pretrained:
        return kse.zoo.text_classifier.text_classifier(num_classes=WAYS, seed=seed,
                                       pretrained=kse.zoo.from_preset("shakespeare_gpt"))
    body = kse.zoo.from_preset("shakespeare_gpt").get_config()
    shape = {k: body[k] for k in ("num_layers", "num_heads", "width", "block_size")}
    return kse.zoo.text_classifier.text_classifier(vocabulary=kse.data.shakespeare.vocabulary(),
                                   num_classes=WAYS, body="gpt", body_args=shape, seed=seed)


def _freeze_lower(classifier) -> None:
    body = classifier.language_model
    body.embedding.trainable = False
    for block in body.blocks[:-1]:
        block.trainable = False


def _accuracies(learner, tasks, steps: int) -> np.ndarray:
    """Per-task query accuracy after ``steps`` inner steps."""
    import tensorflow as tf

    @tf.function
    def predict(element):
        return learner.task_predictions(element, steps)[1]

    scores = []
    for element in tasks:
        labels = element[1][1].numpy()
        scores.extend((np.argmax(predict(element).numpy(), -1) == labels).mean(axis=1))
    return np.array(scores)


def _prototype_scores(features, tasks, metric: str) -> list[float]:
    """Per-task query accuracy of the nearest class mean under ``metric``."""
    scores = []
    for (sx, sy), (qx, qy) in tasks:
        for task in range(sx.shape[0]):
            support, query = features(sx[task]).numpy(), features(qx[task]).numpy()
            if metric == "centered":  # the task's mean feature says nothing of the speaker
                centre = support.mean(0)
                support, query = support - centre, query - centre
            if metric in ("cosine", "centered"):
                support = support / np.linalg.norm(support, axis=1, keepdims=True)
                query = query / np.linalg.norm(query, axis=1, keepdims=True)
            means = np.stack([support[sy[task].numpy() == c].mean(0) for c in range(WAYS)])
            distance = ((query[:, None] - means[None]) ** 2).sum(-1)
            scores.append(float((distance.argmin(1) == qy[task].numpy()).mean()))
    return scores


def prototypes(shots: int, seed: int) -> dict:
    import tensorflow as tf

    classifier = _classifier(True, seed)
    @tf.function(reduce_retracing=True)
    def features(x):
        return classifier.features(x, training=False)

    picking = _tasks("train", shots, PICK_TASKS, 2)
    by_metric = {metric: float(np.mean(_prototype_scores(features, picking, metric)))
                 for metric in PROTOTYPE_METRICS}
    metric = max(by_metric, key=by_metric.get)
    return {"accuracies": _prototype_scores(features, _tasks("test", shots, TEST_TASKS, 1),
                                            metric),
            "chosen": {"metric": metric, "training_play_accuracy": by_metric}}


def finetune(shots: int, seed: int) -> dict:
    import keras_selfevo as kse

    classifier = _classifier(True, seed)
    # A zero head: its first step moves each class's weights towards that class's mean
    # feature (a random head's guesses drown the few examples' signal: chance at 1 shot).
    for weight in classifier.head.weights:
        weight.assign(np.zeros(weight.shape, weight.dtype))
    picking = _tasks("train", shots, PICK_TASKS, 2)
    chosen, best = None, -1.0
    for layers, lr, steps in FINETUNE_GRID:
        learner = kse.MetaLearner(classifier, "anil", inner_lr=lr, adapt_layers=layers)
        score = float(_accuracies(learner, picking, steps).mean())
        if score > best:
            chosen, best = (layers, lr, steps), score
    layers, lr, steps = chosen
    learner = kse.MetaLearner(classifier, "anil", inner_lr=lr, adapt_layers=layers)
    return {"accuracies": _accuracies(learner, _tasks("test", shots, TEST_TASKS, 1),
                                      steps).tolist(),
            "chosen": {"layers": layers, "learning_rate": lr, "steps": steps,
                       "training_play_accuracy": best}}


def meta(arm: str, shots: int, seed: int, meta_steps: int) -> dict:
    import keras

    import keras_selfevo as kse

    algorithm = arm.replace("_scratch", "")
    pretrained = not arm.endswith("_scratch")
    classifier = _classifier(pretrained, seed)
    if pretrained:
        _freeze_lower(classifier)
    adapt = dict(adapt_layers=["policy"]) if algorithm == "anil" else {}
    learner = kse.MetaLearner(classifier, algorithm, inner_lr=INNER_LR, inner_steps=INNER_STEPS,
                              self_loss_weight=SELF_LOSS_WEIGHT, **adapt)
    learner.compile(optimizer=keras.optimizers.Adam(META_LR))
    start = time.perf_counter()
    tasks = kse.data.speaker_tasks("train", WAYS, shots, QUERIES, length=LENGTH,
                                   meta_batch_size=META_BATCH, num_meta_batches=meta_steps,
                                   seed=seed)
    history = learner.fit(tasks, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    learner.self_loss_weight = 0.0  # scored on the classification loss alone
    return {"accuracies": _accuracies(learner, _tasks("test", shots, TEST_TASKS, 1),
                                      INNER_STEPS).tolist(),
            "meta_steps": meta_steps, "train_seconds": seconds,
            "last_loss": float(history.history["loss"][-1])}


def run(arm: str, shots: int, seed: int, meta_steps: int) -> dict:
    start = time.perf_counter()
    if arm == "prototypes":
        result = prototypes(shots, seed)
    elif arm == "finetune":
        result = finetune(shots, seed)
    else:
        result = meta(arm, shots, seed, meta_steps)
    return {"arm": arm, "shots": shots, "seed": seed, **result,
            "seconds": time.perf_counter() - start}


def _interval(values: np.ndarray) -> str:
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.4f} ± {half:.4f}"


def report() -> str:
    with open(PATH) as handle:
        runs = json.load(handle)
    lines = []
    for shots in sorted({r["shots"] for r in runs}):
        arms = {r["arm"]: np.array(r["accuracies"]) for r in runs if r["shots"] == shots}
        lines += [f"\n5-way {shots}-shot ({len(next(iter(arms.values())))} held-out tasks; "
                  "chance 0.2000)", "| arm | accuracy | − fine-tuning | − prototypes |",
                  "|---|---|---|---|"]
        for arm in ARMS:
            if arm not in arms:
                continue
            cells = [_interval(arms[arm] - arms[base]) if base in arms and base != arm
                     else "" for base in ("finetune", "prototypes")]
            lines.append(f"| {arm} | {_interval(arms[arm])} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arm", choices=ARMS, help="run one arm (in this process)")
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--meta-steps", type=int, default=400,
                        help=f"meta-updates of {META_BATCH} tasks for the meta-learned arms")
    parser.add_argument("--all", action="store_true",
                        help="every arm at 1 and 5 shots, each in its own process")
    parser.add_argument("--arms", default=",".join(ARMS), help="the arms --all runs")
    parser.add_argument("--report", action="store_true", help="print the table")
    args = parser.parse_args()
    if args.all:
        for shots in (1, 5):
            for arm in args.arms.split(","):
                subprocess.run([sys.executable, __file__, "--arm", arm, "--shots", str(shots),
                                "--seed", str(args.seed), "--meta-steps",
                                str(args.meta_steps)], check=True)
    if args.arm:
        result = run(args.arm, args.shots, args.seed, args.meta_steps)
        runs = []
        if os.path.exists(PATH):
            with open(PATH) as handle:
                runs = [r for r in json.load(handle)
                        if (r["arm"], r["shots"]) != (args.arm, args.shots)]
        os.makedirs(RESULTS_DIR, exist_ok=True)
        with open(PATH, "w") as handle:
            json.dump(runs + [result], handle, indent=1)
        print(f"{args.arm} {args.shots}-shot: {np.mean(result['accuracies']):.4f} "
              f"({result['seconds']:.0f} s)", flush=True)
    if args.report or args.all:
        print(report())


if __name__ == "__main__":
    main()
