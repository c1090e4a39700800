"""Give memory that the checks freed back to the operating system, before a step that needs much.

A Keras application's weights are arrays of up to a few MB each. Once glibc's malloc has
freed one such mapping it raises its mmap threshold, serves later arrays of that size from
its heap and keeps their pages when they are freed. Every snapshot of ResNet50's weights
(94 MB) then stays in the process: after the determinism replay the gate held 1 GB it no
longer used, and save_load's loaded models came on top (peak 3.18 GB; 2.78 GB with the
freed pages returned). `malloc_trim(0)` returns free heap pages; where the C library has no
such call (macOS, musl, Windows) this only collects garbage.
"""

from __future__ import annotations

import ctypes
import functools
import gc


def release_freed_memory() -> None:
    """Collect unreachable objects (a model's layers refer to each other) and return free heap pages."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # the running process's own C library
    except (OSError, AttributeError):
        return None
