"""Where a training run's seconds went: named phases, in the order they ran.

`train` fills a run's `Timings`: reading the data, building the model, the loss before fit,
the fit (split at the end of its first step, which includes tracing the training step) and
`after_fit`. `pytest --pc-durations` prints them beside each check's own seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

READ_DATA = "read data"
BUILD_MODEL = "build model"
INITIAL_LOSS = "initial loss"
FIT = "fit"
FIRST_STEP = "fit: first step (trace)"
REMAINING_STEPS = "fit: remaining steps"
AFTER_FIT = "after_fit"
# The run's seconds in no named phase (weight snapshots, the optimizer state for replays).
OTHER = "other"


@dataclass
class Timings:
    """Seconds per named phase, in the order the phases first ran, and the run's total.

    Attributes:
        phases: phase name -> seconds; a phase timed twice adds up.
        total: the whole run's seconds, set when it ends; 0.0 until then.
    """

    phases: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    _first_step_end: float | None = field(default=None, repr=False, compare=False)

    def add(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the seconds the block takes (also when it raises) to `phase`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - start)

    @contextlib.contextmanager
    def timed_fit(self) -> Iterator[None]:
        """Time a fit, split where `step_ended` first marked it: first step (with its trace), remaining steps.

        Without a mark (a custom loop, a fit that raised before its first step ended) the
        whole block is one "fit" phase.
        """
        self._first_step_end = None
        start = time.perf_counter()
        try:
            yield
        finally:
            end = time.perf_counter()
            first = self._first_step_end
            if first is not None and start <= first <= end:
                self.add(FIRST_STEP, first - start)
                self.add(REMAINING_STEPS, end - first)
            else:
                self.add(FIT, end - start)

    def step_ended(self) -> None:
        """Mark the end of a training step; only the first mark inside `timed_fit` counts."""
        if self._first_step_end is None:
            self._first_step_end = time.perf_counter()

    def with_other(self) -> dict[str, float]:
        """The phases and, when the total exceeds them, the rest as "other": they sum to the total."""
        phases = dict(self.phases)
        rest = self.total - sum(phases.values())
        if rest > 0:
            phases[OTHER] = rest
        return phases

    def to_dict(self) -> dict:
        """Plain data, to send from a pytest-xdist worker: {"phases": {...}, "total": seconds}."""
        return {"phases": self.with_other(), "total": self.total}
