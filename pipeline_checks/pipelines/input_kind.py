"""Whether a pipeline's inputs are images, and how the checks say so where a part needs images.

Images are arrays of shape (N, height, width, channels). Everything else (tabular rows
(N, features), sequences (N, steps, features), any numeric array with one row per example)
runs through every check; the parts that only mean something for images (an application's
`preprocess_input`, pixel ranges, per-channel statistics) say they do not apply.
"""

from __future__ import annotations

import numpy as np

NUMERIC_KINDS = "iuf"  # signed and unsigned integers, floats: what a model can take as inputs


def are_images(inputs) -> bool:
    """Whether `inputs` is a batch of images, (N, height, width, channels)."""
    return np.ndim(inputs) == 4


def examples_word(inputs) -> str:
    """ "image" for images, else "example": what one row of `inputs` is called in messages."""
    return word_for_rank(np.ndim(inputs))


def word_for_rank(rank: int) -> str:
    """ "image" for inputs of rank 4 (N, height, width, channels), else "example"."""
    return "image" if rank == 4 else "example"


def shape_text(inputs) -> str:
    """The shape of `inputs` with N for its rows, e.g. "(N, 8)"."""
    return "(" + ", ".join(["N", *(str(d) for d in np.shape(inputs)[1:])]) + ("," if np.ndim(inputs) == 1 else "") + ")"


def not_images(inputs) -> str:
    """The reason an image-only part does not apply, e.g. "inputs are not images (shape (N, 8))"."""
    return f"inputs are not images (shape {shape_text(inputs)})"
