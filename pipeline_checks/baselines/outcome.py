"""The baseline test's outcome: which figures moved, as a table, and how to refresh the baseline."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline_checks._text import listed, shortened
from pipeline_checks.baselines.files import UPDATE_COMMAND, Baseline
from pipeline_checks.baselines.tolerances import Departure, Tolerance, compare
from pipeline_checks.results.check_result import CheckResult, failed, passed

NAME = "baseline"

# What a run fixes before its first training step. Another machine (other vector instructions,
# another core count) can differ in a kernel's last bit, and training grows that: the built-in
# MobileNetV2's loss moved by 14% to 4000% from epoch 3 on between two CPUs, while these figures
# stay within their tolerances. Against a file from another machine only these can fail.
BEFORE_TRAINING = ("data.", "loss.initial", "params.", "flops")
# A figure that one side lacks although both ran what measures it, by the side that has it.
SIDES = (("now", "missing from the baseline"), ("baseline", "not measured now"))


def compared(
    pipeline,
    baseline: Baseline,
    path: Path,
    seed: int,
    figures: dict[str, Any],
    overrides: tuple[tuple[str, Tolerance], ...] = (),
    versions: dict[str, str] | None = None,
    machine: str | None = None,
    checks: Iterable[str] | None = None,
) -> CheckResult:
    """Compare this run's `figures` (trained from `seed`, on `versions` and `machine`) with `baseline`,
    read from `path`.

    Where `baseline` was recorded on another machine than `machine`, trained figures that moved
    are reported and do not fail; `machine=None` compares every figure as from this machine.
    `checks` are the check families that ran before this run (None: those whose numbers
    `figures` hold); a figure one side lacks fails where both sides ran what measures it.
    """
    refresh = refresh_command(pipeline.name)
    if baseline.seed != seed:
        return failed(
            NAME,
            pipeline,
            f"the baseline was recorded from seed {baseline.seed}, this run trained from seed {seed}",
            f"Figures from different seeds differ by design. Run with --pc-seed {baseline.seed} (or pc_seed in the ini "
            f"file; pytest-randomly draws a new seed each run otherwise), or record this seed's baseline:\n    "
            f"{refresh}",
            baseline=str(path),
            baseline_seed=baseline.seed,
            seed=seed,
        )
    departures = compare(baseline.figures, figures, overrides, baseline.recorded_checks, checks)
    elsewhere = machine is not None and baseline.machine != machine
    grown = [d for d in departures if d.moved and elsewhere and not d.figure.startswith(BEFORE_TRAINING)]
    failing = [d for d in departures if d.moved and d not in grown]
    moved = [d for d in failing if not d.missing]
    unmatched = [d for d in departures if not d.moved]
    total = len(baseline.figures.keys() | figures.keys())
    numbers = {
        "baseline": str(path),
        "figures": len(figures),
        "moved": len(moved),
        "missing": len(failing) - len(moved),
        "not_compared": len(unmatched),
        "moved_on_another_machine": len(grown),
    }
    note = f"\nNot compared, as measured on one side only: {_grouped(unmatched)}" if unmatched else ""
    note += _another_machine(grown, baseline.machine, machine, refresh)
    if not failing:
        # Figures on both sides, less those that moved: never below zero, whatever the file lacks.
        compared = len(baseline.figures.keys() & figures.keys()) - sum(d.side == "both" for d in grown)
        headline = f"{compared} figures as in the baseline" + (
            f", {len(grown)} trained ones from another machine" if grown else ""
        )
        return passed(
            NAME, pipeline, f"{compared} figures within tolerance of {path}", note.strip(), headline=headline, **numbers
        )
    groups = [(moved, "moved from the baseline", "moved")] + [
        ([d for d in failing if d.missing and d.side == side], words, words) for side, words in SIDES
    ]
    groups = [(members, words, short) for members, words, short in groups if members]
    return failed(
        NAME,
        pipeline,
        "; ".join(
            f"{len(members)} of {total} figures {words}: {listed((d.figure for d in members), 5)}"
            for members, words, _ in groups
        ),
        f"Baseline {path} ({baseline.key}, seed {seed}, recorded on {_versions(baseline.versions)}):\n\n"
        f"{table(failing)}{note}{_lacking(failing, baseline)}{_version_change(baseline.versions, versions)}"
        f"{_kernel_noise(figures)}\n\n"
        f"If the change is intended, refresh the baseline and commit the file:\n    {refresh}",
        headline="; ".join(
            f"{len(members)} figures {short}: {listed(d.figure for d in members)}" for members, _, short in groups
        ),
        **numbers,
    )


def missing(pipeline, path: Path) -> CheckResult:
    return failed(
        NAME,
        pipeline,
        f"no baseline yet; this run's figures were written to {path}",
        "Review the file and commit it: the next run compares against it. This test fails once, so CI never passes on "
        "a baseline it has just written.",
        baseline=str(path),
    )


def written(pipeline, path: Path, figures: int) -> CheckResult:
    return passed(
        NAME,
        pipeline,
        f"baseline written to {path} ({figures} figures)",
        "Review the change and commit it.",
        headline=f"written, {figures} figures",
        baseline=str(path),
        figures=figures,
    )


def refresh_command(pipeline_name: str) -> str:
    """Every test of the pipeline: the baseline takes the numbers of the checks that run before it."""
    return f'{UPDATE_COMMAND} -k "[{pipeline_name}]"'


def table(departures: list[Departure]) -> str:
    rows = [("figure", "baseline", "now", "difference", "tolerance")]
    rows += [
        (
            d.figure,
            _short(d.baseline) if d.side != "now" else "-",
            _short(d.now) if d.side != "baseline" else "-",
            d.difference,
            str(d.tolerance) if d.side == "both" else "-",
        )
        for d in departures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows)


def _grouped(departures: list[Departure]) -> str:
    """'checks.labels (12 figures, not measured now), loss.epoch_11 (new)': one entry per check family."""
    groups: dict[str, list[Departure]] = {}
    for departure in departures:
        parts = departure.figure.split(".")
        groups.setdefault(".".join(parts[:2]) if parts[0] == "checks" else departure.figure, []).append(departure)
    entries = []
    for name, members in groups.items():
        side = "new" if members[0].side == "now" else "not measured now"
        entries.append(f"{name} ({len(members)} figures, {side})" if len(members) > 1 else f"{name} ({side})")
    return ", ".join(entries)


def _short(value: Any, limit: int = 28) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list):
        inner = ", ".join(_short(v, 8) for v in value[:6])
        text = f"[{inner}{', ...' if len(value) > 6 else ''}]"
    else:
        text = str(value)
    return shortened(text, limit)


def _another_machine(grown: list[Departure], then: str, now: str | None, refresh: str) -> str:
    if not grown:
        return ""
    return (
        f"\nMoved, but the baseline was recorded on another machine ({then or 'not recorded'}; this one: {now}), "
        f"so they do not fail: {listed((d.figure for d in grown), 5)}. Training grows a kernel's last-bit difference "
        f"between machines within a few epochs; only what the run fixes before training ({', '.join(BEFORE_TRAINING)}) "
        f"is held against another machine's baseline. Record this machine's to compare every figure:\n    {refresh}"
    )


def _lacking(failing: list[Departure], baseline: Baseline) -> str:
    if not any(d.missing for d in failing):
        return ""
    checks = sorted(baseline.recorded_checks)
    recorded = f"after the checks {', '.join(checks)}" if checks else "with no checks"
    return (
        f"\nA figure one side lacks fails where both sides ran what measures it (the baseline was recorded "
        f"{recorded}; it holds {len(baseline.figures)} figures). A file cut short or emptied loses figures; a "
        f"pipeline that trains more epochs, or reports another metric, gains some."
    )


def _version_change(then: dict[str, str], now: dict[str, str] | None) -> str:
    changed = [
        f"{name} {then[name]} -> {now[name]}" for name in then if now and name in now and now[name] != then[name]
    ]
    return (
        f"\nThe versions changed since the baseline ({', '.join(changed)}): that alone can move these figures."
        if changed
        else ""
    )


def _kernel_noise(figures: dict[str, Any]) -> str:
    if not figures.get("checks.determinism.kernel_noise"):
        return ""
    return (
        "\nThe determinism check found kernel noise in this run: its figures can move between processes with no "
        "change; widen their tolerances (docs/baselines.md, 'Noise') or skip the baseline for this pipeline."
    )


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items()) or "unknown versions"
