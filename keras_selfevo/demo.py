"""``keras-selfevo demo``: a one-minute tour, one line per step with the number that shows it.

Steps: generate the glyph images; fit a SelfEvolvingModel (labels + masked reconstruction);
meta-learn sines with MAML; evolve a classifier from rewards alone; train a small GPT on
Shakespeare for a few seconds; export for TF Serving. A summary table ends the run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import data, presets, zoo
from keras_selfevo._internal.plotting import pyplot, save_curves
from keras_selfevo.data import language_data, shakespeare
from keras_selfevo.evolve import BanditClassification, SelfEvolution
from keras_selfevo.export import export_for_serving
from keras_selfevo.export.rest import serving_request
from keras_selfevo.meta import MetaLearner
from keras_selfevo.zoo.generation import XLA_FROM_LENGTH

# Drawings 0-14 of each class train, 15-19 are held out.
HELD_OUT_FROM = 15
TEXT_PROMPT = "\n\n**"
SAMPLE_LENGTH = 100
PRESET = "shakespeare_gpt"  # the ready-trained model the text step ends on


@dataclasses.dataclass
class Step:
    """One line of the summary: what ran, how long, the figure that shows it, its files."""

    name: str
    seconds: float
    figure: str
    files: tuple[str, ...] = ()


def _timed(function: Callable[[], tuple[str, dict, tuple[str, ...]]], name: str,
           report: dict, steps: list[Step]) -> None:
    """Run one step, print its line, keep its figures and its summary row."""
    start = time.perf_counter()
    line, figures, files = function()
    seconds = time.perf_counter() - start
    print(f"[{name}] {line} ({seconds:.1f} s)", flush=True)
    report.update(figures)
    report[f"{name}_seconds"] = seconds
    steps.append(Step(name, seconds, figures.pop("_summary", ""), files))


# ------------------------------------------------------------------------------ images
def load_glyphs(data_dir: str) -> dict:
    """The demo's images: ``selfevo_glyphs/small`` train split, generated into ``data_dir``.

    Returns ``pixels`` (float32 in [0, 1]), ``targets`` (class indices 0..n-1),
    ``held_out`` (the last 5 drawings of each class) and ``num_classes``.
    """
    train = data.load("selfevo_glyphs/small", split="train", batch_size=-1, data_dir=data_dir)
    classes, targets = np.unique(train["label"].numpy(), return_inverse=True)
    return {"pixels": train["image"].numpy().astype(np.float32) / 255.0, "targets": targets,
            "held_out": train["sample"].numpy() >= HELD_OUT_FROM,
            "num_classes": len(classes)}


def _save_glyph_grid(images: np.ndarray, labels: np.ndarray, path: str, classes: int = 10,
                     per_class: int = 8) -> None:
    plt = pyplot()
    rows = []
    for label in np.unique(labels)[:classes]:
        members = images[labels == label][:per_class, :, :, 0]
        rows.append(np.concatenate(list(members), axis=1))
    fig, ax = plt.subplots(figsize=(per_class, classes))
    ax.imshow(np.concatenate(rows, axis=0), cmap="gray")
    ax.set_axis_off()
    ax.set_title("selfevo_glyphs: one class per row")
    fig.savefig(path, bbox_inches="tight", dpi=80)
    plt.close(fig)


def inpainting(model: keras.Model, images: np.ndarray, rate: float,
               seed: int = 0) -> dict[str, np.ndarray | float]:
    """Hide ``rate`` of the pixels, let the self head fill them, and score the fill.

    Returns the masked images, the filled ones (visible pixels kept, hidden ones from the
    reconstruction), the mask, and two figures over the hidden pixels: ``stroke_recall``,
    the share of hidden stroke pixels (> 0.5 in the original) filled > 0.5 (0 if they were
    left blank), and ``false_strokes``, the share of hidden background pixels filled > 0.5.
    """
    mask = (np.random.default_rng(seed).random(images.shape) < rate).astype(np.float32)
    masked = images * (1.0 - mask)
    reconstruction = np.asarray(model(masked, training=False)["self"])
    filled = masked + mask * reconstruction
    hidden = mask > 0
    stroke = images > 0.5
    return {"masked": masked, "filled": filled, "mask": mask,
            "stroke_recall": float(np.mean(filled[hidden & stroke] > 0.5)),
            "false_strokes": float(np.mean(filled[hidden & ~stroke] > 0.5))}


def _save_inpainting(result: dict, originals: np.ndarray, path: str) -> None:
    plt = pyplot()
    count = len(originals)
    fig, axes = plt.subplots(3, count, figsize=(count, 3.4))
    # Hidden pixels are drawn red in the top row, so the filled-in regions can be found.
    gray = np.repeat(result["masked"], 3, axis=-1)
    gray[..., 0] = np.maximum(gray[..., 0], result["mask"][..., 0])
    rows = [("hidden pixels (red)", gray), ("filled in by the self head", result["filled"]),
            ("original", originals)]
    for row, (title, images) in enumerate(rows):
        for column in range(count):
            ax = axes[row, column]
            image = images[column]
            ax.imshow(image if image.shape[-1] == 3 else image[..., 0], cmap="gray",
                      vmin=0, vmax=1)
            ax.set_axis_off()
        axes[row, 0].set_title(title, loc="left", fontsize=9)
    fig.savefig(path, bbox_inches="tight", dpi=90)
    plt.close(fig)


def _fit_step(output_dir: str, images: np.ndarray, targets: np.ndarray, held_out: np.ndarray,
              num_classes: int, epochs: int, seed: int):
    """Labels and masked reconstruction in one fit; the self head's fill-in, scored."""
    one_hot = np.eye(num_classes, dtype=np.float32)[targets]
    # The reward says how good the target is: every label is right (reward 1). The
    # self-evolution step replaces it with rewards of the model's own guesses.
    y = {"policy": one_hot, "reward": np.ones(len(images), np.float32)}
    model = zoo.build("mnist_cnn", num_classes=num_classes, decoder="conv", seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), alpha=0.5, reward_weighting="raw",
                  masked_self_loss=True, metrics=["categorical_accuracy"])
    history = model.fit(
        images[~held_out], {k: v[~held_out] for k, v in y.items()}, batch_size=32,
        epochs=epochs, verbose=0,
        validation_data=(images[held_out], {k: v[held_out] for k, v in y.items()}),
    ).history
    accuracy = float(history["val_categorical_accuracy"][-1])
    save_curves(history, ["self_loss", "reinforce_loss", "val_self_loss", "val_reinforce_loss"],
                os.path.join(output_dir, "self_evolving_losses.png"),
                "SelfEvolvingModel: alpha L_self + (1 - alpha) L_reinforce")
    rate = model.get_layer("masking").rate
    fill = inpainting(model, images[held_out], rate, seed=seed)
    _save_inpainting({k: v[:8] for k, v in fill.items() if isinstance(v, np.ndarray)},
                     images[held_out][:8], os.path.join(output_dir, "reconstructions.png"))
    line = (f"SelfEvolvingModel CNN, labels + masked reconstruction (alpha 0.5), {epochs} "
            f"epochs: held-out accuracy {accuracy:.3f} (chance {1 / num_classes:.3f}); with "
            f"{rate:.0%} of the pixels hidden, the self head fills {fill['stroke_recall']:.0%} "
            f"of the hidden stroke pixels and marks {fill['false_strokes']:.1%} of the hidden "
            "background (reconstructions.png)")
    figures = {"held_out_accuracy": accuracy, "stroke_recall": fill["stroke_recall"],
               "false_strokes": fill["false_strokes"], "model": model,
               "_summary": f"accuracy {accuracy:.3f}; fills {fill['stroke_recall']:.0%} of "
                           "hidden strokes"}
    return line, figures, ("self_evolving_losses.png", "reconstructions.png")


# ------------------------------------------------------------------------ meta-learning
def _true_sine(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The task's ``A sin(x - phase)``, solved from noiseless points by least squares."""
    basis = np.stack([np.sin(x), np.cos(x)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, y, rcond=None)
    return lambda grid: a * np.sin(grid) + b * np.cos(grid)


def _meta_step(output_dir: str, iterations: int, seed: int):
    """MAML on sinusoids: MSE on fresh tasks before and after adaptation, and one plot."""
    learner = MetaLearner(zoo.build("sinusoid_mlp", seed=seed), "maml", inner_lr=0.01)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=50)
    learner.fit(data.sinusoid_tasks(10, 10, 25, seed=seed, num_meta_batches=iterations),
                verbose=0)
    fresh = next(iter(data.sinusoid_tasks(10, 100, 200, seed=seed + 99, num_meta_batches=1)))
    (support_x, support_y), (query_x, query_y) = fresh
    start = learner.model(tf.reshape(query_x, [-1, 1]))
    before = float(np.mean((np.reshape(start, query_y.shape) - query_y) ** 2))
    after_1 = float(np.mean(learner.task_predictions(fresh, 1)[0].numpy()))
    after_10 = float(np.mean(learner.task_predictions(fresh, 10)[0].numpy()))
    adapted = learner.adapt(support_x[0], support_y[0], steps=10)
    grid = np.linspace(-5, 5, 200, dtype=np.float32)[:, None]
    truth = _true_sine(query_x[0, :, 0].numpy(), query_y[0, :, 0].numpy())
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(grid, truth(grid), color="k", lw=2, label="true sine")
    ax.plot(grid, np.asarray(learner.model(grid)), "--", label="meta-learned start")
    ax.plot(grid, np.asarray(adapted(grid)), label="after 10 steps on the 10 points")
    ax.scatter(support_x[0], support_y[0], color="C3", s=18, zorder=3,
               label="K = 10 support points")
    ax.set_title("MAML: a new sine from 10 points")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.savefig(os.path.join(output_dir, "maml_sinusoid.png"), bbox_inches="tight", dpi=100)
    plt.close(fig)
    line = (f"MAML, {iterations} meta-iterations: query MSE on 200 new sines {before:.3f} "
            f"before adaptation, {after_1:.3f} after 1 step, {after_10:.3f} after 10 steps "
            "on 10 points")
    figures = {"maml_mse_before": before, "maml_mse_1_step": after_1,
               "maml_mse_10_steps": after_10,
               "_summary": f"MSE {before:.2f} -> {after_10:.2f} after 10 steps"}
    return line, figures, ("maml_sinusoid.png",)


# ------------------------------------------------------------------------ self-evolution
def evolve_from_rewards(images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
                        test_labels: np.ndarray, num_classes: int, seed: int = 0,
                        generations: int = 6) -> list[dict[str, float]]:
    """A new classifier that never sees a label learns from right/wrong rewards alone.

    Each generation, it guesses 8 classes for each of 300 images (temperature 1, 5%
    uniform), the reward is 1 for a right guess, and it fits on its best guess per image
    (reward-weighted, plus the masked self-loss). Returns the loop's history; generation 0
    is the untrained model.
    """
    model = zoo.build("mnist_cnn", num_classes=num_classes, decoder="conv", seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), alpha=0.3, reward_weighting="raw",
                  masked_self_loss=True)
    environment = BanditClassification(images, labels, test_images, test_labels, num_classes)
    loop = SelfEvolution(model, environment, samples_per_generation=300,
                         samples_per_observation=8, keep="best_per_observation",
                         epochs_per_generation=2, batch_size=32, epsilon=0.05, seed=seed)
    return loop.run(generations, verbose=0)


def _evolve_step(output_dir: str, images, targets, held_out, num_classes: int, seed: int):
    history = evolve_from_rewards(images[~held_out], targets[~held_out], images[held_out],
                                  targets[held_out], num_classes, seed=seed)
    curve = {"held-out accuracy": [row["accuracy"] for row in history],
             "mean reward": [row["mean_reward"] for row in history]}
    save_curves(curve, list(curve), os.path.join(output_dir, "evolution.png"),
                "Self-evolution from rewards alone", xlabel="generation", first=0)
    before, after = history[0]["accuracy"], history[-1]["accuracy"]
    path = " -> ".join(f"{row['accuracy']:.2f}" for row in history)
    line = (f"a new CNN that never sees a label guesses, is rewarded 1 for a right guess, "
            f"learns; {len(history) - 1} generations: held-out accuracy {before:.3f} -> "
            f"{after:.3f} ({path})")
    figures = {"evolve_accuracy_before": before, "evolve_accuracy_after": after,
               "evolve_mean_reward": history[-1]["mean_reward"],
               "_summary": f"accuracy {before:.2f} -> {after:.2f}, no labels"}
    return line, figures, ("evolution.png",)


# --------------------------------------------------------------------------- language
def _text_step(steps: int, seed: int):
    """A small GPT on the Shakespeare plays: nats/char and a sample, before and after."""
    vocabulary = shakespeare.vocabulary()
    train_ids = np.concatenate(list(language_data.shakespeare_streams("train").values()))
    validation = np.concatenate(list(language_data.shakespeare_streams("validation").values()))
    validation = validation[:20_000]
    model = zoo.build("gpt", vocabulary=vocabulary, num_layers=2, num_heads=4, width=64,
                      block_size=64, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))

    def sample() -> str:
        # A few short samples: XLA's compile would cost more than its faster steps save.
        model.sampling_jit_compile = SAMPLE_LENGTH >= XLA_FROM_LENGTH
        text = model.generate([TEXT_PROMPT], SAMPLE_LENGTH, temperature=0.8, seed=seed)[0]
        return " ".join(text[len(TEXT_PROMPT):].split())[:72]

    nats_before, sample_before = model.nats_per_char(validation), sample()
    model.fit(language_data.window_batches(train_ids, 64, 32, seed, 0, steps), verbose=0)
    nats_after, sample_after = model.nats_per_char(validation), sample()
    model = zoo.from_preset(PRESET)
    # Its nats/char on these 20,000 characters is the check its metadata records (the
    # test suite re-measures it): no need to score them again here.
    nats_preset, sample_preset = presets.metadata(PRESET)["check"]["value"], sample()
    line = (f"GPT (2 layers, width 64) on the Shakespeare plays, {steps} steps of next-token "
            f"log-likelihood: validation {nats_before:.2f} -> {nats_after:.2f} nats/char\n"
            f"       sample before: {sample_before!r}\n"
            f"       sample after:  {sample_after!r}\n"
            f"       the ready-trained preset {PRESET!r} (4 layers, width 128; "
            f"kse.zoo.from_preset): {nats_preset:.2f} nats/char\n"
            f"                      {sample_preset!r}")
    figures = {"text_nats_before": nats_before, "text_nats_after": nats_after,
               "text_sample_after": sample_after, "text_nats_preset": nats_preset,
               "_summary": f"{nats_before:.2f} -> {nats_after:.2f} nats/char"}
    return line, figures, ()


# ----------------------------------------------------------------------------- export
def _export_step(model: keras.Model, image: np.ndarray, output_dir: str):
    """Export for TF Serving, answer a REST request as the server would."""
    base = os.path.join(output_dir, "serving", "glyph_cnn")
    export = export_for_serving(model, base, overwrite=True)
    request_path = os.path.join(output_dir, "serving", "request.json")
    request = {"instances": [{"image": image.tolist()}]}
    with open(request_path, "w") as handle:
        json.dump(request, handle)
    answer = serving_request(export.path, request)["predictions"][0]
    predicted = int(np.argmax(answer["policy"]))
    expected = int(np.argmax(model.predict(image[None], verbose=0)["policy"]))
    base_path = os.path.abspath(base)
    line = (f"SavedModel version {export.version} in {export.path} "
            f"({'verified' if export.ok else 'FAILED verification'} in a fresh process); the "
            f"request in {request_path} is answered with class {predicted} (predict: "
            f"{expected}). Serve and query it:\n"
            f"       docker run -p 8501:8501 -v {base_path}:/models/glyph_cnn "
            "-e MODEL_NAME=glyph_cnn tensorflow/serving\n"
            f"       curl -d @{os.path.abspath(request_path)} "
            "http://localhost:8501/v1/models/glyph_cnn:predict")
    figures = {"export_ok": bool(export.ok), "export_class": predicted,
               "export_predict_class": expected,
               "_summary": f"version {export.version}, {'verified' if export.ok else 'FAILED'}"}
    return line, figures, (os.path.join("serving", "glyph_cnn", str(export.version)),
                           os.path.join("serving", "request.json"))


# ------------------------------------------------------------------------------- tour
def _summary(steps: list[Step], output_dir: str) -> str:
    rows = [("step", "seconds", "result", "files")] + [
        (s.name, f"{s.seconds:.1f}", s.figure, ", ".join(s.files)) for s in steps]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    total = sum(s.seconds for s in steps)
    return "\n".join(
        [f"\nSummary ({total:.0f} s; files in {os.path.abspath(output_dir)}):", *lines,
         "\nNext:",
         "  keras-selfevo generate shakespeare_gpt --prompt ROMEO:  # a ready-trained model",
         "  keras-selfevo train mnist_cnn --data my_images/       # your own images (or a "
         "CSV, a text)",
         "  keras-selfevo evolve evolve_bandit_glyphs             # the reward loop, longer",
         "  keras-selfevo meta-train maml_sinusoid                # MAML and its variants",
         "  keras-selfevo recipes | presets                       # what else there is",
         "  make notebooks                                        # the tutorials in "
         "JupyterLab (in a clone)",
         f"\nTensorFlow {tf.__version__}, Keras {keras.__version__}"])


def run_demo(output_dir: str = "demo_output", epochs: int = 12,
             seed: int = 0) -> dict[str, float]:
    """Run the tour; returns the figures it printed.

    Args:
        output_dir: Folder for the PNGs, the generated datasets and the export.
        epochs: Training epochs of the glyph classifier; the MAML meta-iterations and the
            GPT steps scale with it.
        seed: Seeds the models, the tasks and the sampling.
    """
    os.makedirs(output_dir, exist_ok=True)
    keras.utils.set_random_seed(seed)
    report: dict = {}
    steps: list[Step] = []
    glyphs: dict[str, np.ndarray] = {}

    def data_step():
        glyphs.update(load_glyphs(os.path.join(output_dir, "tensorflow_datasets")))
        _save_glyph_grid(glyphs["pixels"], glyphs["targets"],
                         os.path.join(output_dir, "glyphs.png"))
        count, classes = len(glyphs["pixels"]), glyphs["num_classes"]
        line = (f"selfevo_glyphs/small: {count} images of {classes} classes, drawn on this "
                "machine (glyphs.png)")
        return line, {"_summary": f"{count} images, {classes} classes"}, ("glyphs.png",)

    _timed(data_step, "data", report, steps)
    images, targets, held_out = glyphs["pixels"], glyphs["targets"], glyphs["held_out"]
    num_classes = glyphs["num_classes"]
    _timed(lambda: _fit_step(output_dir, images, targets, held_out, num_classes, epochs, seed),
           "fit", report, steps)
    model = report.pop("model")
    _timed(lambda: _meta_step(output_dir, max(300, 250 * epochs), seed), "meta", report, steps)
    _timed(lambda: _evolve_step(output_dir, images, targets, held_out, num_classes, seed),
           "evolve", report, steps)
    _timed(lambda: _text_step(max(30, 17 * epochs), seed), "text", report, steps)
    _timed(lambda: _export_step(model, images[held_out][0], output_dir), "export", report,
           steps)
    print(_summary(steps, output_dir))
    return report
