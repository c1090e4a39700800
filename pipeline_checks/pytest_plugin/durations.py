"""`--pc-durations`: where the gate's seconds went, per pipeline, in the terminal summary.

Each check is timed where `pc_check` runs it. The first check of a pipeline that asks for
its shared training run pays for training it; that run's seconds, by phase (`Timings`),
are taken out of the check's and listed as the run's. A check's own seconds are the rest:
its extra passes, saves, replays. Each check's entry is plain data that travels with its
result on the test report (from pytest-xdist workers to the controller).

Imports nothing heavy: the plugin loads it in every pytest run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pytest

# This process's entries, one per check run, as plain data; each test's go on its report.
ITEM_KEY = pytest.StashKey[list]()
# The session's entries, ((test order, index), entry), from this process or from workers.
SESSION_KEY = pytest.StashKey[list]()
OPTION = "pc_durations"
TITLE = "pipeline-checks durations"


@dataclass
class Measured:
    """One check's seconds, and the training run it paid for, if it trained one."""

    seconds: float = 0.0
    run: dict | None = None  # Timings.to_dict() of the shared run this check trained

    def entry(self, pipeline: str, check: str) -> dict:
        return {
            "pipeline": pipeline,
            "check": check,
            "seconds": self.seconds,
            "run": self.run,
        }


@contextlib.contextmanager
def measured(pipeline, seed: int) -> Iterator[Measured]:
    """Time a check on `pipeline` from `seed`, less the shared run it trains (which is kept apart)."""
    measurement = Measured()
    before = _shared_run(pipeline, seed)
    start = time.perf_counter()
    try:
        yield measurement
    finally:
        elapsed = time.perf_counter() - start
        after = _shared_run(pipeline, seed)
        if after is not None and after is not before:  # this check trained it
            measurement.run = after.timings.to_dict()
            elapsed -= after.timings.total
        measurement.seconds = max(elapsed, 0.0)


def _shared_run(pipeline, seed: int):
    from pipeline_checks.run.training import trained_shared_run

    try:
        return trained_shared_run(pipeline, seed)
    except TypeError:  # not a pipeline a run can be shared for (no weak reference to it)
        return None


def record(item: pytest.Item, pipeline: str, check: str, measurement: Measured) -> None:
    """Keep a check's entry with its test, when --pc-durations asks for them."""
    if item.config.getoption(OPTION, False):
        item.stash.setdefault(ITEM_KEY, []).append(measurement.entry(pipeline, check))


def recorded(item: pytest.Item) -> list:
    """The entries of one test, for its report."""
    return list(item.stash.get(ITEM_KEY, ()))


def collect(config: pytest.Config, position: int, entries: Iterable[dict]) -> None:
    """Keep the entries a test report carried, in the test's place in the session."""
    kept = config.stash.setdefault(SESSION_KEY, [])
    kept.extend(((position, index), entry) for index, entry in enumerate(entries))


def session_entries(config: pytest.Config) -> list[dict]:
    """Every entry of the session, in the order of its tests."""
    return [entry for _order, entry in sorted(config.stash.get(SESSION_KEY, []), key=lambda pair: pair[0])]


@dataclass
class PipelineDurations:
    """One pipeline's seconds: its training run's phases, and each check family's own work."""

    name: str
    phases: dict[str, float] = field(default_factory=dict)
    run_total: float = 0.0
    checks: dict[str, float] = field(default_factory=dict)

    @property
    def checks_total(self) -> float:
        return sum(self.checks.values())

    @property
    def total(self) -> float:
        return self.run_total + self.checks_total


def by_pipeline(entries: Iterable[dict]) -> list[PipelineDurations]:
    """The entries summed per pipeline, in the order the pipelines first appear."""
    pipelines: dict[str, PipelineDurations] = {}
    for entry in entries:
        durations = pipelines.setdefault(entry["pipeline"], PipelineDurations(entry["pipeline"]))
        durations.checks[entry["check"]] = durations.checks.get(entry["check"], 0.0) + entry["seconds"]
        run = entry.get("run")
        if run:  # a run trained twice (e.g. dropped between its tests) counts twice
            durations.run_total += run["total"]
            for phase, seconds in run["phases"].items():
                durations.phases[phase] = durations.phases.get(phase, 0.0) + seconds
    return list(pipelines.values())


def lines(entries: Iterable[dict]) -> list[str]:
    """The terminal section: per pipeline, its total, then each run phase and each check's own seconds."""
    pipelines = by_pipeline(entries)
    out = []
    for durations in pipelines:
        out.append(
            f"{durations.name}: {durations.total:.2f}s "
            f"(training run {durations.run_total:.2f}s, checks {durations.checks_total:.2f}s)"
        )
        rows = [("run", phase, seconds) for phase, seconds in durations.phases.items()]
        rows += [("check", check, seconds) for check, seconds in durations.checks.items()]
        for kind, name, seconds in rows:
            share = 100 * seconds / durations.total if durations.total > 0 else 0.0
            out.append(f"{seconds:8.2f}s {share:5.1f}%  {kind:<5}  {name}")
    if pipelines:
        total = sum(p.total for p in pipelines)
        runs = sum(p.run_total for p in pipelines)
        plural = "pipeline" if len(pipelines) == 1 else "pipelines"
        out.append(
            f"suite: {total:.2f}s over {len(pipelines)} {plural} "
            f"(training runs {runs:.2f}s, checks {total - runs:.2f}s)"
        )
    return out


def report(entries: Iterable[dict]) -> dict:
    """The durations as plain data, for report.json: seconds per pipeline, run phase and check."""
    pipelines = by_pipeline(entries)
    return {
        "pipelines": {
            p.name: {
                "total": p.total,
                "run": {"total": p.run_total, "phases": p.phases},
                "checks": p.checks,
            }
            for p in pipelines
        },
        "total": sum(p.total for p in pipelines),
    }
