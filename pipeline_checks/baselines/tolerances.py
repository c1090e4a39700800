"""How far each figure of a fingerprint may move before it counts as a change, and the comparison.

A figure passes when `|now - baseline| <= absolute + relative * |baseline|` (numpy.isclose's
rule), element by element for lists. Defaults, by the first pattern that matches the figure:

| figures                                                | tolerance                                         |
|--------------------------------------------------------|---------------------------------------------------|
| `seed`, `data.*`, `params.*`, `flops`, `target_epoch`, | exact                                             |
| `predictions.class`                                    |                                                   |
| `loss.*`, `fit.loss`, `evaluate.loss`                  | relative 0.01                                     |
| `fit.*`, `evaluate.*` (accuracy-like metrics)          | absolute 0.02                                     |
| `predictions.output`                                   | absolute 0.02                                     |
| `predictions.value` (a regression's outputs)           | absolute 0.02 + relative 0.02                     |
| `checks.*`                                             | absolute 0.01 + relative 0.05 (ints, bools exact) |

A figure one side lacks fails where both sides ran what measures it: the fingerprint's own
figures, and the numbers of a check family that ran before both the recording and this run (a
file cut short or emptied, a metric or an epoch added). A figure of a check family that ran
on one side only (a check deselected with -k) is listed and does not fail: it was not measured
on the other side, so it did not move.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline_checks._validation import check_number, is_number


@dataclass(frozen=True)
class Tolerance:
    absolute: float = 0.0
    relative: float = 0.0

    @property
    def exact(self) -> bool:
        return self.absolute == 0 and self.relative == 0

    def allows(self, baseline: float, now: float) -> bool:
        if math.isnan(baseline) or math.isnan(now):
            return math.isnan(baseline) and math.isnan(now)
        return abs(now - baseline) <= self.absolute + self.relative * abs(baseline)

    def __str__(self) -> str:
        if self.exact:
            return "exact"
        parts = [f"absolute {self.absolute:g}"] * bool(self.absolute) + [f"relative {self.relative:g}"] * bool(
            self.relative
        )
        return " + ".join(parts)


EXACT = Tolerance()
# First match wins; patterns are fnmatch patterns over figure names.
DEFAULT_TOLERANCES: tuple[tuple[str, Tolerance], ...] = (
    ("seed", EXACT),
    ("data.*", EXACT),
    ("params.*", EXACT),
    ("flops", EXACT),
    ("target_epoch", EXACT),
    ("predictions.class", EXACT),
    ("loss.*", Tolerance(absolute=1e-6, relative=0.01)),
    ("fit.loss", Tolerance(absolute=1e-6, relative=0.01)),
    ("evaluate.loss", Tolerance(absolute=1e-6, relative=0.01)),
    ("fit.*", Tolerance(absolute=0.02)),
    ("evaluate.*", Tolerance(absolute=0.02)),
    ("predictions.output", Tolerance(absolute=0.02)),
    ("predictions.value", Tolerance(absolute=0.02, relative=0.02)),  # values on the targets' own scale
    ("checks.*", Tolerance(absolute=0.01, relative=0.05)),
)
FALLBACK = Tolerance(absolute=1e-6, relative=0.01)


def parse_tolerances(table: Any, where: str) -> tuple[tuple[str, Tolerance], ...]:
    """`{"figure-or-pattern" = {absolute = 0.05, relative = 0.1}}` from pyproject.toml; errors name `where`."""
    example = 'e.g. {"loss.*" = {relative = 0.05}, "predictions.class" = {absolute = 0}}'
    if not isinstance(table, dict):
        raise ValueError(f"Invalid {where} = {table!r}: expected a table of figure -> tolerance, {example}")
    parsed = []
    for pattern, value in table.items():
        if not isinstance(value, dict) or not value or set(value) - {"absolute", "relative"}:
            raise ValueError(
                f"Invalid {where} {pattern!r} = {value!r}: expected a table with 'absolute' and/or 'relative', "
                f"{example}"
            )
        numbers = {
            key: check_number(f"{where} {pattern}.{key}", number, "a number >= 0", 0, math.inf)
            for key, number in value.items()
        }
        parsed.append((str(pattern), Tolerance(**numbers)))
    return tuple(parsed)


def tolerance_for(figure: str, value: Any, overrides: tuple[tuple[str, Tolerance], ...] = ()) -> Tolerance:
    """The figure's tolerance: the first matching override, else the first matching default."""
    for pattern, tolerance in overrides:
        if fnmatch.fnmatchcase(figure, pattern):
            return tolerance
    if figure.startswith("checks.") and not isinstance(value, float):
        return EXACT  # a check's counts and verdicts are exact; only its measurements carry noise
    return next(
        (tolerance for pattern, tolerance in DEFAULT_TOLERANCES if fnmatch.fnmatchcase(figure, pattern)), FALLBACK
    )


@dataclass(frozen=True)
class Departure:
    """A figure that moved beyond its tolerance, or that only one side measured."""

    figure: str
    baseline: Any
    now: Any
    tolerance: Tolerance
    moved: bool  # True: counts against the baseline; False: measured on one side only (listed, not failed)
    side: str = "both"  # which side has the figure: "both", "baseline" or "now"

    @property
    def missing(self) -> bool:
        """One side lacks it although both ran what measures it."""
        return self.moved and self.side != "both"

    @property
    def difference(self) -> str:
        if self.side == "now":
            return "missing from the baseline" if self.moved else "new, not in baseline"
        if self.side == "baseline":
            return "not measured now"
        return describe_difference(self.baseline, self.now)


def check_families(figures: dict[str, Any]) -> frozenset[str]:
    """The check families whose numbers `figures` hold: "numerics" of "checks.numerics.last_loss"."""
    return frozenset(name.split(".")[1] for name in figures if name.startswith("checks.") and name.count(".") >= 2)


def compare(
    baseline: dict[str, Any],
    now: dict[str, Any],
    overrides: tuple[tuple[str, Tolerance], ...] = (),
    checked_then: Iterable[str] | None = None,
    checked_now: Iterable[str] | None = None,
) -> list[Departure]:
    """Every figure that moved beyond its tolerance or is missing on one side (moved=True), then those
    only one side measured.

    `checked_then` and `checked_now` are the check families that ran before the baseline was
    recorded and before this run (None: those whose numbers the figures hold).
    """
    both_checked = (check_families(baseline) if checked_then is None else frozenset(checked_then)) & (
        check_families(now) if checked_now is None else frozenset(checked_now)
    )
    moved, unmatched = [], []
    for figure in [*baseline, *(f for f in now if f not in baseline)]:
        if figure not in now or figure not in baseline:
            side = "baseline" if figure in baseline else "now"
            departure = Departure(
                figure,
                baseline.get(figure),
                now.get(figure),
                EXACT,
                moved=_measured_by(figure, both_checked),
                side=side,
            )
            (moved if departure.moved else unmatched).append(departure)
            continue
        tolerance = tolerance_for(figure, baseline[figure], overrides)
        if not _within(baseline[figure], now[figure], tolerance):
            moved.append(Departure(figure, baseline[figure], now[figure], tolerance, moved=True))
    return moved + unmatched


def _measured_by(figure: str, both_checked: frozenset[str]) -> bool:
    """Whether both sides ran what measures `figure`: the fingerprint always, a check's numbers where it ran."""
    parts = figure.split(".")
    return parts[0] != "checks" or len(parts) < 3 or parts[1] in both_checked


def _within(baseline: Any, now: Any, tolerance: Tolerance) -> bool:
    if isinstance(baseline, list) or isinstance(now, list):
        if not (isinstance(baseline, list) and isinstance(now, list)) or len(baseline) != len(now):
            return False
        return all(_within(b, n, tolerance) for b, n in zip(baseline, now))
    if is_number(baseline) and is_number(now):
        return baseline == now if tolerance.exact else tolerance.allows(float(baseline), float(now))
    return baseline == now


def describe_difference(baseline: Any, now: Any) -> str:
    if isinstance(baseline, list) and isinstance(now, list):
        if len(baseline) != len(now):
            return f"{len(baseline)} -> {len(now)} entries"
        differing = sum(b != n for b, n in zip(baseline, now))
        flat = [(b, n) for b, n in zip(_flat(baseline), _flat(now)) if is_number(b) and is_number(n)]
        if flat and any(isinstance(b, float) for b, _ in flat):
            return f"{differing} of {len(baseline)} differ, largest {max(abs(n - b) for b, n in flat):.3g}"
        return f"{differing} of {len(baseline)} differ"
    if is_number(baseline) and is_number(now):
        change = now - baseline
        relative = f" ({change / baseline:+.1%})" if baseline and not isinstance(baseline, bool) else ""
        return f"{change:+.4g}{relative}"
    return "differs"


def _flat(values: list) -> list:
    return [item for value in values for item in (_flat(value) if isinstance(value, list) else [value])]
