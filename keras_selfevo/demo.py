"""``keras-selfevo demo``: a short end-to-end tour that prints a report and writes PNGs."""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import data, zoo
from keras_selfevo.evolve import BanditClassification, SelfEvolution
from keras_selfevo.export import export_for_serving
from keras_selfevo.meta import MetaLearner
from keras_selfevo.plotting import pyplot, save_curves


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


def _save_reconstructions(model: keras.Model, images: np.ndarray, path: str) -> None:
    plt = pyplot()
    recon = model.predict(images, verbose=0)["self"]
    fig, axes = plt.subplots(2, len(images), figsize=(len(images), 2.2))
    for column, (image, out) in enumerate(zip(images, recon)):
        axes[0, column].imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
        axes[1, column].imshow(out[..., 0], cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_axis_off()
        axes[1, column].set_axis_off()
    fig.suptitle("input (top) and the model's reconstruction (bottom)")
    fig.savefig(path, bbox_inches="tight", dpi=80)
    plt.close(fig)


def _meta_learning(output_dir: str, iterations: int) -> dict[str, float]:
    """MAML on sinusoids: post-adaptation MSE on fresh tasks, and a plot of one fit."""
    start = time.perf_counter()
    learner = MetaLearner(zoo.build("sinusoid_mlp", seed=0), "maml", inner_lr=0.01)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=50)
    learner.fit(data.sinusoid_tasks(10, 10, 25, seed=0, num_meta_batches=iterations), verbose=0)
    fresh = next(iter(data.sinusoid_tasks(10, 100, 200, seed=99, num_meta_batches=1)))
    before = float(np.mean(learner.task_predictions(fresh, 1)[0].numpy()))
    after = float(np.mean(learner.task_predictions(fresh, 10)[0].numpy()))
    (support_x, support_y), _ = fresh
    adapted = learner.adapt(support_x[0], support_y[0], steps=10)
    grid = np.linspace(-5, 5, 200, dtype=np.float32)[:, None]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(grid, learner.model.predict(grid, verbose=0), "--", label="meta-learned start")
    ax.plot(grid, adapted.predict(grid, verbose=0), label="after 10 steps on 10 points")
    ax.scatter(support_x[0], support_y[0], color="k", s=12, label="support points")
    ax.set_title("MAML on a new sine")
    ax.legend()
    fig.savefig(os.path.join(output_dir, "maml_sinusoid.png"), bbox_inches="tight", dpi=100)
    plt.close(fig)
    seconds = time.perf_counter() - start
    print(f"[meta] MAML, {iterations} meta-iterations in {seconds:.1f} s: query MSE on 200 "
          f"fresh sines after 1 step {before:.3f}, after 10 steps {after:.3f}")
    return {"maml_mse_1_step": before, "maml_mse_10_steps": after}


def _self_evolution(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                    test_images: np.ndarray, test_labels: np.ndarray,
                    num_classes: int) -> dict[str, float]:
    """Two generations of the bandit loop: the model guesses classes, learns from rewards."""
    environment = BanditClassification(images, labels, test_images, test_labels, num_classes)
    model.compile(optimizer=keras.optimizers.Adam(5e-4), alpha=0.3, reward_weighting="raw",
                  masked_self_loss=True)
    history = SelfEvolution(model, environment, samples_per_generation=300,
                            epsilon=0.05).run(2, verbose=0)
    rewards = ", ".join(f"{row['mean_reward']:.3f}" for row in history)
    print(f"[evolve] 2 generations (reward = right guess, labels never shown): mean reward "
          f"before and after each generation {rewards}; held-out accuracy "
          f"{history[-1]['accuracy']:.3f}")
    return {"evolve_mean_reward": history[-1]["mean_reward"]}


def _export(model: keras.Model, images: np.ndarray, output_dir: str) -> dict[str, float]:
    """Export for TF Serving, reload the SavedModel, predict."""
    export_report = export_for_serving(model, os.path.join(output_dir, "serving", "glyph_cnn"),
                                       overwrite=True)
    loaded = tf.saved_model.load(export_report.path)
    served = loaded.signatures["serving_default"](image=tf.constant(images))["policy"].numpy()
    difference = float(np.abs(served - model.predict(images, verbose=0)["policy"]).max())
    print(f"[export] SavedModel version {export_report.version} at {export_report.path} "
          f"({'verified' if export_report.ok else 'FAILED'} in a fresh process); reloaded, it "
          f"predicts classes {served.argmax(-1).tolist()} (max diff to predict {difference:.1e})")
    return {"export_max_abs_diff": difference}


def run_demo(output_dir: str = "demo_output", epochs: int = 12) -> dict[str, float]:
    """Run the tour; returns the figures it printed.

    Args:
        output_dir: Folder for the PNGs and the generated datasets.
        epochs: Training epochs of the glyph classifier.
    """
    os.makedirs(output_dir, exist_ok=True)
    keras.utils.set_random_seed(0)
    report: dict[str, float] = {}

    start = time.perf_counter()
    train = data.load(
        "selfevo_glyphs/small",
        split="train",
        data_dir=os.path.join(output_dir, "tensorflow_datasets"),
        batch_size=-1,
    )
    images, labels = train["image"].numpy(), train["label"].numpy()
    samples = train["sample"].numpy()
    report["data_seconds"] = time.perf_counter() - start
    _save_glyph_grid(images, labels, os.path.join(output_dir, "glyphs.png"))
    print(f"[data] selfevo_glyphs/small: {len(images)} train images of "
          f"{len(np.unique(labels))} classes, generated locally in {report['data_seconds']:.1f} s")

    # Classes are the train split's labels; the last 5 drawings of each are held out.
    classes, targets = np.unique(labels, return_inverse=True)
    held_out = samples >= 15
    pixels = images.astype(np.float32) / 255.0
    one_hot = np.eye(len(classes), dtype=np.float32)[targets]
    # The reward says how good the target is: here every label is right (reward 1). The
    # self-evolution loop replaces it with rewards of the model's own choices.
    targets_dict = {"policy": one_hot, "reward": np.ones(len(pixels), np.float32)}
    model = zoo.build("mnist_cnn", num_classes=len(classes), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), alpha=0.5, reward_weighting="raw",
                  masked_self_loss=True, metrics=["categorical_accuracy"])
    start = time.perf_counter()
    history = model.fit(
        pixels[~held_out], {k: v[~held_out] for k, v in targets_dict.items()},
        batch_size=32, epochs=epochs, verbose=0,
        validation_data=(pixels[held_out], {k: v[held_out] for k, v in targets_dict.items()}),
    ).history
    report["self_evolving_seconds"] = time.perf_counter() - start
    report["held_out_accuracy"] = float(history["val_categorical_accuracy"][-1])
    report["held_out_self_loss"] = float(history["val_self_loss"][-1])
    save_curves(history, ["self_loss", "reinforce_loss", "val_self_loss", "val_reinforce_loss"],
                 os.path.join(output_dir, "self_evolving_losses.png"),
                 "SelfEvolvingModel: alpha L_self + (1 - alpha) L_reinforce")
    _save_reconstructions(model, pixels[held_out][:8],
                          os.path.join(output_dir, "reconstructions.png"))
    print(f"[fit] SelfEvolvingModel CNN (alpha=0.5, masked self-loss), {epochs} epochs in "
          f"{report['self_evolving_seconds']:.1f} s: held-out accuracy "
          f"{report['held_out_accuracy']:.3f} (chance {1 / len(classes):.3f}), held-out "
          f"self-loss {report['held_out_self_loss']:.3f}")

    report.update(_meta_learning(output_dir, iterations=max(300, 250 * epochs)))
    report.update(_self_evolution(model, pixels[~held_out], targets[~held_out],
                                  pixels[held_out], targets[held_out], len(classes)))
    report.update(_export(model, pixels[held_out][:4], output_dir))

    print(f"\nPNGs written to {os.path.abspath(output_dir)}: glyphs.png, "
          "self_evolving_losses.png, reconstructions.png, maml_sinusoid.png")
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    return report
