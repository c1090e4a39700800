"""Generators of tiny uint8 images, one class at a time.

Each generator takes a NumPy Generator, a class index, the number of classes, the
count, the side and the channels, and returns uint8 NHWC images. The same Generator
state gives the same bytes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline_checks.testing.photos import load_photo, photo_names


def pattern_images(rng, label: int, classes: int, count: int, size: int, channels: int):
    """Oriented gratings, one orientation and tint per class: separable by design.

    Phase, frequency, contrast and pixel noise vary within a class.
    """
    angle = np.pi * label / classes
    coords = np.arange(size, dtype=np.float64) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    along = np.cos(angle) * xx + np.sin(angle) * yy
    tint = 0.55 + 0.45 * np.cos(2 * np.pi * (label / classes + np.arange(3) / 3))
    images = np.empty((count, size, size, channels), dtype=np.uint8)
    for i in range(count):
        cycles = rng.uniform(2.0, 3.5)
        phase = rng.uniform(0, 2 * np.pi)
        contrast = rng.uniform(0.6, 1.0)
        wave = 0.5 + 0.5 * contrast * np.sin(2 * np.pi * cycles * along + phase)
        colour = wave[..., None] * (tint if channels == 3 else np.ones(1))
        noisy = colour * 255 + rng.normal(0, 8, colour.shape)
        images[i] = np.clip(noisy, 0, 255).round().astype(np.uint8)
    return images


def noise_images(rng, label: int, classes: int, count: int, size: int, channels: int):
    """Uniform noise: nothing separates the classes but memorization."""
    return rng.integers(0, 256, size=(count, size, size, channels), dtype=np.uint8)


def photo_images(rng, label: int, classes: int, count: int, size: int, channels: int):
    """One photograph per class: first the whole photograph, then random crops and flips.

    Crops cover 60-100% of the side; `per_class=1` gives the photographs themselves.
    """
    names = photo_names()
    if classes > len(names):
        raise ValueError(
            f"kind='photos' has {len(names)} photographs, one per class; "
            f"received: classes={classes}"
        )
    photo = Image.fromarray(load_photo(names[label]))
    side = photo.width
    images = np.empty((count, size, size, channels), dtype=np.uint8)
    for i in range(count):
        view = photo
        if i > 0:
            crop = int(round(side * rng.uniform(0.6, 1.0)))
            left, top = (int(v) for v in rng.integers(0, side - crop + 1, size=2))
            view = photo.crop((left, top, left + crop, top + crop))
            if rng.random() < 0.5:
                view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        view = view.resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(view.convert("L" if channels == 1 else "RGB"))
        images[i] = pixels.reshape(size, size, channels)
    return images


GENERATORS = {"patterns": pattern_images, "noise": noise_images, "photos": photo_images}


def class_names(kind: str, classes: int) -> tuple[str, ...]:
    """Class names whose alphabetical order is the label order, as Keras' loader sorts them."""
    if kind == "photos":
        return photo_names()[:classes]
    return tuple(f"{kind}_{i:02d}" for i in range(classes))
