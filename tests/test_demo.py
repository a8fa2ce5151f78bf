import os
import re
import subprocess

import numpy as np
import pytest

from keras_selfevo import demo

STEPS = ("data", "fit", "meta", "evolve", "text", "export")
# What a user must not see from `keras-selfevo demo`: (pattern, what it would be).
FORBIDDEN = (
    (r"WARNING|Warning\b|warnings\.warn", "a warning"),
    (r"^[IWEF]\d{4} \d\d:\d\d:\d\d", "a TensorFlow C++ log line"),
    (r"absl|oneDNN|cuInit|cuda|CUDA|AVX|rebuild TensorFlow", "a TensorFlow start-up notice"),
    (r"retracing", "a tf.function retracing warning"),
    (r"(?i)deprecat", "a deprecation notice"),
    (r"Downloading and preparing|downloaded and prepared|Unknown size",
     "TFDS calling local generation a download"),
    (r"Traceback|Error\b", "an error"),
    (r"\x1b\[", "terminal control codes (nested progress bars)"),
)


@pytest.mark.slow
def test_demo_prints_only_its_own_lines_and_writes_its_files(tmp_path, console_script):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [console_script, "demo", "--output", str(tmp_path), "--epochs", "1"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        for line in stream.splitlines():
            for pattern, what in FORBIDDEN:
                assert not re.search(pattern, line), f"{what}: {line!r}"
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Generating selfevo_glyphs/small 1.0.0 locally")
    for step in STEPS:
        assert sum(line.startswith(f"[{step}] ") for line in lines) == 1, step
        assert any(re.match(rf"{step} +\d+\.\d +\S", line) for line in lines), step
    export = next(line for line in lines if line.startswith("[export]"))
    assert "(verified in a fresh process)" in export
    assert any(line.strip().startswith("curl -d @") for line in lines)
    evolve = next(line for line in lines if line.startswith("[evolve]"))
    before, after = map(float, re.search(r"accuracy (\S+) -> (\S+) \(", evolve).groups())
    assert after > 0.4 and after > before + 0.3  # as for the other seeds below
    for name in ("glyphs.png", "self_evolving_losses.png", "reconstructions.png",
                 "maml_sinusoid.png", "evolution.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "serving" / "glyph_cnn" / "1" / "saved_model.pb").exists()
    assert (tmp_path / "serving" / "request.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])  # seed 0 is the demo's own (test above)
def test_self_evolution_step_raises_held_out_accuracy(glyphs_small_dir, seed):
    glyphs = demo.load_glyphs(glyphs_small_dir)
    train, test = ~glyphs["held_out"], glyphs["held_out"]
    history = demo.evolve_from_rewards(
        glyphs["pixels"][train], glyphs["targets"][train], glyphs["pixels"][test],
        glyphs["targets"][test], glyphs["num_classes"], seed=seed)
    before, after = history[0]["accuracy"], history[-1]["accuracy"]
    # The demo's "0.06 -> 0.54": seeds 0-4 ended at 0.49-0.70 from 0.02-0.08.
    assert after > 0.4 and after > before + 0.3, [row["accuracy"] for row in history]


class _Copy:
    """A stand-in model whose self head returns a fixed image batch."""

    def __init__(self, images):
        self.images = images

    def __call__(self, inputs, training=False):
        return {"self": self.images}


def test_inpainting_scores_the_hidden_pixels_only():
    rng = np.random.default_rng(0)
    images = (rng.random((4, 8, 8, 1)) > 0.6).astype(np.float32)
    perfect = demo.inpainting(_Copy(images), images, rate=0.3, seed=1)
    assert perfect["stroke_recall"] == 1.0 and perfect["false_strokes"] == 0.0
    np.testing.assert_array_equal(perfect["filled"], images)
    blank = demo.inpainting(_Copy(np.zeros_like(images)), images, rate=0.3, seed=1)
    assert blank["stroke_recall"] == 0.0
    full = demo.inpainting(_Copy(np.ones_like(images)), images, rate=0.3, seed=1)
    mask = full["mask"] > 0
    # Every hidden pixel is filled with 1: the false-stroke share is the hidden background's.
    assert full["false_strokes"] == 1.0
    np.testing.assert_array_equal(full["filled"][~mask], images[~mask])
    np.testing.assert_array_equal(full["masked"][mask], 0.0)
