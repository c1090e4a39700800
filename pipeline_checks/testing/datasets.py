"""Tiny, deterministic image classification datasets: arrays, PNG trees and tf.data."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipeline_checks._validation import check_integer
from pipeline_checks.testing.images import GENERATORS, class_names, image_shape

KINDS = tuple(GENERATORS)
LABEL_MODES = ("int", "categorical")


@dataclass(frozen=True, eq=False)
class TinyImageDataset:
    """A handful of uint8 images per class, with integer labels ordered by class.

    Attributes:
        images: read-only uint8 array of shape (N, height, width, channels).
        labels: read-only int32 array of shape (N,), values in [0, classes).
        class_names: names whose alphabetical order is the label order, so
            `keras.utils.image_dataset_from_directory` assigns the same indices.
        kind: "patterns", "noise" or "photos".
        seed: the seed the images were generated from.
        scratch_dir: where `to_directory()` writes by default (the fixture sets it
            under pytest's tmp_path).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    kind: str
    seed: int
    scratch_dir: Path | None = field(default=None, repr=False)

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def height(self) -> int:
        """Rows of pixels in each image."""
        return self.images.shape[1]

    @property
    def width(self) -> int:
        """Columns of pixels in each image."""
        return self.images.shape[2]

    @property
    def size(self) -> int | tuple[int, int]:
        """The side as an int for square images, else `(height, width)`.

        As `make_tiny_images` takes it: `make_tiny_images(size=data.size, ...)` makes
        images of the same shape. Use `height` and `width` for code that takes either.
        """
        return self.height if self.height == self.width else (self.height, self.width)

    @property
    def channels(self) -> int:
        return self.images.shape[3]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def one_hot_labels(self) -> np.ndarray:
        """float32 one-hot labels of shape (N, classes), for categorical_crossentropy."""
        return np.eye(self.classes, dtype=np.float32)[self.labels]

    def to_directory(self, root: str | os.PathLike | None = None) -> Path:
        """Write one folder of PNG files per class, as users keep their images.

        Args:
            root: an empty or missing folder; default: `scratch_dir`.

        Returns:
            The root folder: `root/<class_name>/img_0000.png`, ..., each PNG
            `width` x `height` pixels.
        """
        if root is None:
            if self.scratch_dir is None:
                raise ValueError("to_directory() needs a root folder: pass root=...")
            root = self.scratch_dir
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f"to_directory() writes into an empty folder; {root} is not empty")
        mode = "L" if self.channels == 1 else "RGB"
        for name in self.class_names:
            (root / name).mkdir(parents=True)
        for index, (image, label) in enumerate(zip(self.images, self.labels)):
            pixels = image[..., 0] if self.channels == 1 else image
            Image.fromarray(pixels, mode=None).convert(mode).save(
                root / self.class_names[label] / f"img_{index:04d}.png"
            )
        return root

    def image_dataset_from_directory(
        self,
        root: str | os.PathLike | None = None,
        label_mode: str = "int",
        batch_size: int | None = None,
        **kwargs: Any,
    ):
        """Write the PNG tree and read it back with `keras.utils.image_dataset_from_directory`.

        The real loader users use, with `shuffle=False`, this dataset's class names,
        image size (`(height, width)`, so non-square images are not resized) and colour
        mode, so its batches hold the same images in the same order.

        Args:
            root: passed to `to_directory`.
            label_mode: "int" or "categorical".
            batch_size: default: the whole dataset in one batch.
            **kwargs: more arguments for the loader; `verbose` is dropped where it has none (Keras 2).

        Returns:
            A `tf.data.Dataset` of (float32 images, labels) batches.
        """
        from pipeline_checks.model import compat

        _check_label_mode(label_mode)
        compat.tensorflow()
        folder = self.to_directory(root)
        loader = compat.keras().utils.image_dataset_from_directory
        if "verbose" not in inspect.signature(loader).parameters:
            # Keras 2 has no `verbose` (it always prints "Found N files"): drop it rather than fail.
            kwargs.pop("verbose", None)
        return loader(
            str(folder),
            labels="inferred",
            label_mode=label_mode,
            class_names=list(self.class_names),
            color_mode="grayscale" if self.channels == 1 else "rgb",
            batch_size=batch_size or len(self),
            image_size=(self.height, self.width),
            shuffle=False,
            **kwargs,
        )

    def to_tf_dataset(self, label_mode: str = "int", batch_size: int | None = None):
        """A `tf.data.Dataset` of (uint8 images, labels) batches, in label order.

        Images batch as (batch, height, width, channels), as `images` holds them.
        """
        from pipeline_checks.model import compat

        _check_label_mode(label_mode)
        tf = compat.tensorflow()
        labels = self.labels if label_mode == "int" else self.one_hot_labels
        dataset = tf.data.Dataset.from_tensor_slices((self.images, labels))
        return dataset.batch(batch_size or len(self))


def make_tiny_images(
    classes: int = 3,
    per_class: int = 2,
    size: int | tuple[int, int] = 32,
    channels: int = 3,
    seed: int = 0,
    kind: str = "patterns",
) -> TinyImageDataset:
    """Generate a tiny image dataset; the same arguments give the same bytes.

    Args:
        classes: number of classes, at least 1.
        per_class: images per class, at least 1.
        size: side of square images in pixels, at least 1, or `(height, width)` of
            positive integers for non-square images. `size=s` and `size=(s, s)` give
            the same bytes.
        channels: 1 (grayscale) or 3 (RGB).
        seed: seed of the NumPy generator that draws every random choice.
        kind: "patterns" (oriented gratings, separable by class), "noise" (uniform
            noise, separable only by memorization) or "photos" (the real photographs
            in fixtures/photos, one per class, at most 6 classes: first the whole
            photograph, then random crops and flips; for non-square sizes, the largest
            centred window of that aspect ratio and crops of it).

    Returns:
        A `TinyImageDataset`.

    Example:
        >>> data = make_tiny_images(classes=3, per_class=1, size=32, kind="photos")
        >>> data.images.shape, data.class_names
        ((3, 32, 32, 3), ('astronaut', 'chelsea', 'coffee'))
        >>> make_tiny_images(classes=2, per_class=1, size=(24, 40)).images.shape
        (2, 24, 40, 3)
    """
    check_integer("classes", classes, minimum=1)
    check_integer("per_class", per_class, minimum=1)
    shape = image_shape(size)
    check_integer("seed", seed, minimum=0)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 or 3; received: channels={channels!r}")
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; received: kind={kind!r}")
    rng = np.random.default_rng(seed)
    generate = GENERATORS[kind]
    images = np.concatenate([generate(rng, label, classes, per_class, shape, channels) for label in range(classes)])
    labels = np.repeat(np.arange(classes, dtype=np.int32), per_class)
    images.setflags(write=False)
    labels.setflags(write=False)
    return TinyImageDataset(images, labels, class_names(kind, classes), kind, seed)


def _check_label_mode(label_mode: str) -> None:
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}; received: label_mode={label_mode!r}")
