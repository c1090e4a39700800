"""Generators of tiny uint8 images, one class at a time.

Each generator takes a NumPy Generator, a class index, the number of classes, the
count, the size and the channels, and returns uint8 NHWC images. The size is an int
(square images, size x size) or a `(height, width)` tuple; an int `s` and `(s, s)`
give the same bytes. The same Generator state gives the same bytes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline_checks._validation import is_integer
from pipeline_checks.testing.photos import load_photo, photo_names

SIZE_EXPECTED = "a positive integer or (height, width) of positive integers"


def image_shape(size) -> tuple[int, int]:
    """`(height, width)` of an int size (square) or a `(height, width)` tuple or list.

    Raises:
        ValueError: naming the value, for anything else (zero, negative, floats, bools,
            other lengths).
    """
    if is_integer(size) and size >= 1:
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(is_integer(side) and side >= 1 for side in size):
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be {SIZE_EXPECTED}; received: size={size!r}")


def pattern_images(rng, label: int, classes: int, count: int, size, channels: int):
    """Oriented gratings, one orientation and tint per class: separable by design.

    Phase, frequency, contrast and pixel noise vary within a class. Coordinates are
    scaled by the longer side, so gratings keep their angle on non-square images and
    `cycles` counts periods across the longer side.
    """
    height, width = image_shape(size)
    angle = np.pi * label / classes
    longest = max(height, width)
    rows = np.arange(height, dtype=np.float64) / longest
    cols = np.arange(width, dtype=np.float64) / longest
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    along = np.cos(angle) * xx + np.sin(angle) * yy
    tint = 0.55 + 0.45 * np.cos(2 * np.pi * (label / classes + np.arange(3) / 3))
    images = np.empty((count, height, width, channels), dtype=np.uint8)
    for i in range(count):
        cycles = rng.uniform(2.0, 3.5)
        phase = rng.uniform(0, 2 * np.pi)
        contrast = rng.uniform(0.6, 1.0)
        wave = 0.5 + 0.5 * contrast * np.sin(2 * np.pi * cycles * along + phase)
        colour = wave[..., None] * (tint if channels == 3 else np.ones(1))
        noisy = colour * 255 + rng.normal(0, 8, colour.shape)
        images[i] = np.clip(noisy, 0, 255).round().astype(np.uint8)
    return images


def noise_images(rng, label: int, classes: int, count: int, size, channels: int):
    """Uniform noise: nothing separates the classes but memorization."""
    height, width = image_shape(size)
    return rng.integers(0, 256, size=(count, height, width, channels), dtype=np.uint8)


def photo_images(rng, label: int, classes: int, count: int, size, channels: int):
    """One photograph per class: first the whole photograph, then random crops and flips.

    Crops cover 60-100% of the side; `per_class=1` gives the photographs themselves.
    For non-square sizes, "the whole photograph" is the largest centred window of the
    images' aspect ratio, and crops cover 60-100% of that window's sides, so nothing
    is stretched.
    """
    names = photo_names()
    if classes > len(names):
        raise ValueError(f"kind='photos' has {len(names)} photographs, one per class; received: classes={classes}")
    height, width = image_shape(size)
    photo = Image.fromarray(load_photo(names[label]))
    # The largest window of the images' aspect ratio (the whole photograph when they match).
    window_w = min(photo.width, photo.height * width / height)
    window_h = min(photo.height, photo.width * height / width)
    images = np.empty((count, height, width, channels), dtype=np.uint8)
    for i in range(count):
        view = photo
        if i == 0:
            crop_w, crop_h = _crop_sides(window_w, window_h, 1.0)
            if (crop_w, crop_h) != (photo.width, photo.height):
                left, top = (photo.width - crop_w) // 2, (photo.height - crop_h) // 2
                view = photo.crop((left, top, left + crop_w, top + crop_h))
        else:
            crop_w, crop_h = _crop_sides(window_w, window_h, rng.uniform(0.6, 1.0))
            room_x, room_y = photo.width - crop_w + 1, photo.height - crop_h + 1
            # One draw of two for equal room, as square images of a square photograph always had.
            corner = rng.integers(0, room_x, size=2) if room_x == room_y else rng.integers(0, [room_x, room_y])
            left, top = (int(v) for v in corner)
            view = photo.crop((left, top, left + crop_w, top + crop_h))
            if rng.random() < 0.5:
                view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        view = view.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(view.convert("L" if channels == 1 else "RGB"))
        images[i] = pixels.reshape(height, width, channels)
    return images


def _crop_sides(window_w: float, window_h: float, scale: float) -> tuple[int, int]:
    """Whole-pixel sides of `scale` times the window, at least one pixel each."""
    return max(1, round(window_w * scale)), max(1, round(window_h * scale))


GENERATORS = {"patterns": pattern_images, "noise": noise_images, "photos": photo_images}


def class_names(kind: str, classes: int) -> tuple[str, ...]:
    """Class names whose alphabetical order is the label order, as Keras' loader sorts them."""
    if kind == "photos":
        return photo_names()[:classes]
    return tuple(f"{kind}_{i:02d}" for i in range(classes))
