"""How much of a pipeline's data the checks read, so that no source can hang the gate.

A source that repeats or may never end (a `.repeat()` or `from_generator` dataset, a Python
generator) is read for `steps_per_epoch` batches, as fit reads one epoch of it. Whatever the
source, the checks read at most MAX_IMAGES images: the next image or batch stops the read
with an error that says how to bound it, before memory grows. The checks are a gate over a
small sample (the built-in pipelines train on 12 to 24 images), which every run trains on
in full and keeps in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

MAX_IMAGES = 2_000
WHERE = "pipeline_checks.pipelines.bounded_read.MAX_IMAGES"


def read_batches(batches: Iterable, steps: int | None = None, what: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Concatenated x and y of `(x, y[, sample_weight])` batches: the first `steps` (all when None).

    Raises ValueError on a batch of another shape, on no batches, and past MAX_IMAGES images
    (or MAX_IMAGES batches, which an endless run of empty batches would otherwise never reach).
    """
    xs, ys, images = [], [], 0
    for index, batch in enumerate(itertools.islice(batches, steps)):
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(
                f"{what} must yield (x, y) or (x, y, sample_weight) batches; batch {index} is a "
                f"{type(batch).__name__}{f' of {len(batch)}' if isinstance(batch, (tuple, list)) else ''}"
            )
        if _per_part(batch[0]) or _per_part(batch[1]):
            raise ValueError(
                f"{what} yields inputs or targets per input or output ({type(batch[0]).__name__} inputs, "
                f"{type(batch[1]).__name__} targets), which the checks read from arrays only for now; expected "
                "(inputs, {output name: targets}) arrays for a model with several outputs"
            )
        x = np.asarray(batch[0])
        images += len(x) if x.ndim else 1
        if images > MAX_IMAGES or index >= MAX_IMAGES:
            raise ValueError(too_many(what, steps))
        xs.append(x)
        ys.append(np.asarray(batch[1]))
    if not xs:
        raise ValueError(f"{what} yielded no batches")
    return np.concatenate(xs), np.concatenate(ys)


def check_image_count(count: int, what: str = "data") -> None:
    """ValueError when a source that knows its length holds more than MAX_IMAGES images."""
    if count > MAX_IMAGES:
        raise ValueError(too_many(what, None, count))


def too_many(what: str, steps: int | None, count: int | None = None) -> str:
    """The message of a read stopped at MAX_IMAGES, with what bounds it."""
    held = f"holds {count:,} images" if count is not None else f"gave more than {MAX_IMAGES:,} images"
    if steps is not None:
        fix = f"its first steps_per_epoch={steps} batches hold more; lower steps_per_epoch or the batch size"
    elif count is not None:
        fix = "give the checks a smaller sample (fewer files per class, or dataset.take(n))"
    else:
        fix = (
            "if it never ends (.repeat(), from_generator, a Python generator), set fit_kwargs steps_per_epoch "
            "and the checks read that many batches; else give the checks a smaller sample, e.g. dataset.take(n)"
        )
    return f"{what} {held}; the checks read at most {MAX_IMAGES:,} ({WHERE}): {fix}"


def _per_part(value) -> bool:
    """Inputs or targets given per model input or output: a dict, or a list of arrays (not a list of labels)."""
    if isinstance(value, dict):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 1 and all(hasattr(v, "shape") for v in value)
