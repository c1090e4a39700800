"""Arrays kept in a temporary file instead of memory, for state that waits to be put back.

The determinism check's replay trains the run's own model again (its traced step is reused)
and then puts the run's end state back: the weights, which the run's final snapshot already
holds, and the optimizer's slots, which nothing else holds (Adam's two per weight: 188 MB
for ResNet50). Held in memory they add to the gate's peak, during the replay, when the
replay's own arrays are there too; written to an unlinked temporary file they cost the
operating system's page cache, which it can drop, and a read when they are put back.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np


class SpillFile:
    """An unlinked temporary file that arrays are appended to; it goes when the object does."""

    def __init__(self):
        self._file = tempfile.TemporaryFile(prefix="pipeline-checks-state-")
        self._end = 0

    def write(self, array: np.ndarray) -> OnDisk:
        contiguous = np.ascontiguousarray(array)
        self._file.seek(self._end)
        self._file.write(contiguous.reshape(-1).view(np.uint8).data)
        spilled = OnDisk(self, self._end, contiguous.shape, contiguous.dtype)
        self._end += contiguous.nbytes
        return spilled

    def read_into(self, offset: int, out: np.ndarray) -> None:
        self._file.seek(offset)
        view = out.reshape(-1).view(np.uint8)
        if self._file.readinto(view.data) != view.nbytes:
            raise OSError(
                f"the temporary state file {self._file.name!r} ended early: {view.nbytes} bytes expected at {offset}"
            )


@dataclass(frozen=True)
class OnDisk:
    """One array in a `SpillFile`; `array()` reads it back as a new array."""

    file: SpillFile
    offset: int
    shape: tuple
    dtype: np.dtype

    def array(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        self.file.read_into(self.offset, out)
        return out
