"""``keras-selfevo demo``: a short end-to-end tour that prints a report and writes PNGs."""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import data, zoo
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

    print(f"\nPNGs written to {os.path.abspath(output_dir)}: glyphs.png, "
          "self_evolving_losses.png, reconstructions.png")
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    return report
