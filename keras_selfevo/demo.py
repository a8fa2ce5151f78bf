"""``keras-selfevo demo``: a short end-to-end tour that prints a report and writes PNGs."""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo import data


def _save_glyph_grid(images: np.ndarray, labels: np.ndarray, path: str, classes: int = 10,
                     per_class: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _save_curves(history: dict[str, list[float]], keys: list[str], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in keys:
        ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend()
    fig.savefig(path, bbox_inches="tight", dpi=100)
    plt.close(fig)


def _glyph_classifier(num_classes: int) -> keras.Model:
    """Seed 001's small CNN: Conv2D 32 3x3 → MaxPool → Flatten → Dense 64 → classes."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(num_classes),
        ]
    )


def run_demo(output_dir: str = "demo_output", epochs: int = 4) -> dict[str, float]:
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
    model = _glyph_classifier(len(classes))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        images[~held_out], targets[~held_out], batch_size=32, epochs=epochs, verbose=0,
        validation_data=(images[held_out], targets[held_out]),
    ).history
    report["classifier_seconds"] = time.perf_counter() - start
    report["classifier_val_accuracy"] = float(history["val_accuracy"][-1])
    _save_curves(history, ["loss", "val_loss"], os.path.join(output_dir, "classifier_loss.png"),
                 "glyph classifier")
    print(f"[fit] glyph CNN, {epochs} epochs in {report['classifier_seconds']:.1f} s: "
          f"held-out accuracy {report['classifier_val_accuracy']:.3f} "
          f"(chance {1 / len(classes):.3f})")

    print(f"\nPNGs written to {os.path.abspath(output_dir)}: glyphs.png, classifier_loss.png")
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    return report
