"""The small real photographs committed under fixtures/photos (see fixtures/PROVENANCE.md)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image


def photo_dir() -> Path:
    """Where the photographs are: inside an installed wheel, or in a source checkout."""
    packaged = Path(__file__).parent / "data" / "photos"
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[2] / "fixtures" / "photos"
    if source.is_dir():
        return source
    raise FileNotFoundError(
        f"pipeline-checks' photographs are missing: looked in {packaged} and {source}. Reinstall the package."
    )


def photo_names() -> tuple[str, ...]:
    """Names of the available photographs, sorted (the order class indices follow)."""
    return tuple(sorted(p.stem for p in photo_dir().glob("*.png")))


@cache
def load_photo(name: str) -> np.ndarray:
    """One photograph as a read-only uint8 RGB array."""
    with Image.open(photo_dir() / f"{name}.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    pixels.setflags(write=False)
    return pixels
