"""Procedural handwritten-like glyphs: strokes, per-sample jitter and rasterisation.

A glyph *class* is a composition of 2-4 strokes. Strokes are cubic Bézier curves taken
from a pool that belongs to the class's *alphabet*, so characters of one alphabet share a
drawing style (as Omniglot's alphabets do). Every *sample* of a class is drawn again with
its own jitter: control-point wobble, an affine distortion, a stroke width and pixel
noise. All randomness comes from NumPy generators seeded by ``(seed, kind, index)``, so
a class looks the same whatever split or subset it is generated in.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 28
POINTS_PER_STROKE = 12
# Glyph coordinates live in [-1, 1]^2; this many pixels per unit keeps a 3-pixel margin.
_PIXELS_PER_UNIT = 10.5

_STROKE_POOL_SIZE = 8
_MIN_STROKES, _MAX_STROKES = 2, 4

_PIXEL_CENTERS = np.stack(
    np.meshgrid(np.arange(IMAGE_SIZE) + 0.5, np.arange(IMAGE_SIZE) + 0.5, indexing="xy"),
    axis=-1,
).reshape(-1, 2).astype(np.float32)  # (784, 2) as (x, y)


def _bezier(control: np.ndarray, num_points: int = POINTS_PER_STROKE) -> np.ndarray:
    """Points on cubic Bézier curves; ``control`` is (..., 4, 2) → (..., num_points, 2)."""
    t = np.linspace(0.0, 1.0, num_points)[:, None]
    basis = np.concatenate(
        [(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3], axis=1
    )  # (num_points, 4)
    return np.einsum("pk,...kd->...pd", basis, control)


def alphabet_strokes(seed: int, alphabet: int) -> np.ndarray:
    """The alphabet's pool of stroke shapes, as Bézier control points (pool, 4, 2).

    Each shape is centred on the origin with a span of about one unit.
    """
    rng = np.random.default_rng([seed, 0, alphabet])
    start = rng.uniform(-0.5, 0.5, size=(_STROKE_POOL_SIZE, 1, 2))
    # Consecutive control points move by bounded steps: smooth, pen-like curves.
    steps = rng.normal(0.0, 0.45, size=(_STROKE_POOL_SIZE, 3, 2))
    control = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)
    return control - control.mean(axis=1, keepdims=True)


def class_strokes(seed: int, alphabet: int, index: int) -> np.ndarray:
    """The canonical strokes of one class (num_strokes, 4, 2), inside [-1, 1]^2."""
    pool = alphabet_strokes(seed, alphabet)
    rng = np.random.default_rng([seed, 1, index])
    num_strokes = int(rng.integers(_MIN_STROKES, _MAX_STROKES + 1))
    chosen = pool[rng.choice(len(pool), size=num_strokes, replace=True)]
    angle = rng.uniform(-np.pi, np.pi, size=(num_strokes, 1, 1))
    rotation = np.concatenate(
        [np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], axis=-1
    ).reshape(num_strokes, 2, 2)
    scale = rng.uniform(0.7, 1.3, size=(num_strokes, 1, 1))
    offset = rng.uniform(-0.45, 0.45, size=(num_strokes, 1, 2))
    strokes = np.einsum("skd,sed->ske", chosen * scale, rotation) + offset
    # Fit the whole glyph into the unit box so nothing is cut off at the border.
    strokes = strokes - (strokes.max(axis=(0, 1)) + strokes.min(axis=(0, 1))) / 2
    return strokes / max(1.0, float(np.abs(strokes).max()))


def _affine_jitter(rng: np.random.Generator, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Random per-sample affine maps: rotation, anisotropic scale, shear, translation."""
    angle = rng.normal(0.0, np.deg2rad(8.0), size=num_samples)
    scale = rng.uniform(0.85, 1.1, size=(num_samples, 2))
    shear = rng.normal(0.0, 0.12, size=num_samples)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear_matrix = np.zeros((num_samples, 2, 2))
    shear_matrix[:, 0, 0] = shear_matrix[:, 1, 1] = 1.0
    shear_matrix[:, 0, 1] = shear
    matrix = rotation @ shear_matrix * scale[:, None, :]
    translation = rng.normal(0.0, 0.08, size=(num_samples, 2))
    return matrix, translation


def rasterize(points: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Anti-aliased polylines → float images in [0, 1].

    Args:
        points: (num_images, num_strokes, num_points, 2) glyph coordinates in [-1, 1].
        widths: (num_images,) stroke widths in pixels.

    Returns:
        (num_images, IMAGE_SIZE, IMAGE_SIZE) ink intensities.
    """
    pixels = (points * _PIXELS_PER_UNIT + IMAGE_SIZE / 2).astype(np.float32)
    start = pixels[:, :, :-1].reshape(len(points), 1, -1, 2)  # (n, 1, segments, 2)
    delta = pixels[:, :, 1:].reshape(len(points), 1, -1, 2) - start
    inv_length2 = 1.0 / np.maximum(delta[..., 0] ** 2 + delta[..., 1] ** 2, 1e-6)
    # x and y handled separately: (n, 784, segments) arrays instead of a 4-D one.
    rel_x = _PIXEL_CENTERS[None, :, None, 0] - start[..., 0]
    rel_y = _PIXEL_CENTERS[None, :, None, 1] - start[..., 1]
    t = np.clip((rel_x * delta[..., 0] + rel_y * delta[..., 1]) * inv_length2, 0.0, 1.0)
    rel_x -= t * delta[..., 0]
    rel_y -= t * delta[..., 1]
    distance = np.sqrt((rel_x * rel_x + rel_y * rel_y).min(-1))  # (n, 784)
    ink = np.clip(widths[:, None] / 2 + 0.5 - distance, 0.0, 1.0)
    return ink.reshape(len(points), IMAGE_SIZE, IMAGE_SIZE)


def draw_class(seed: int, alphabet: int, index: int, num_samples: int,
               first_sample: int = 0) -> np.ndarray:
    """Samples ``first_sample ...`` of one class as uint8 images (num_samples, 28, 28, 1).

    Ink is bright. Deterministic in ``(seed, alphabet, index)`` and the sample number;
    sample ``k`` does not depend on which other samples are drawn.
    """
    strokes = class_strokes(seed, alphabet, index)
    points, widths, noise = [], [], []
    for k in range(first_sample, first_sample + num_samples):
        rng = np.random.default_rng([seed, 2, index, k])
        wobble = rng.normal(0.0, 0.045, size=strokes.shape)
        matrix, translation = _affine_jitter(rng, 1)
        points.append(_bezier(strokes + wobble) @ matrix[0].T + translation[0])
        widths.append(rng.uniform(1.2, 2.6))
        noise.append(rng.normal(0.0, 0.06, size=(IMAGE_SIZE, IMAGE_SIZE)) * (rng.uniform() < 0.8))
    ink = rasterize(np.stack(points), np.asarray(widths)) + np.stack(noise)
    return np.round(np.clip(ink, 0.0, 1.0) * 255).astype(np.uint8)[..., None]
