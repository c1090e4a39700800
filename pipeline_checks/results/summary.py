"""What the built-in suite found, per pipeline: a terminal table, JSON and Markdown reports, BN plots."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pipeline_checks.results.check_result import CheckResult, plain

SUMMARY_WIDTH = 90


def by_pipeline(results: Iterable[CheckResult]) -> dict[str, list[CheckResult]]:
    grouped: dict[str, list[CheckResult]] = defaultdict(list)
    for result in results:
        grouped[result.pipeline].append(result)
    return dict(grouped)


def verdict(result: CheckResult) -> str:
    """ "passed", "FAILED", or "ERROR" for a check that raised instead of giving a verdict."""
    return "passed" if result.passed else "ERROR" if result.error else "FAILED"


def failures(checks: Iterable[CheckResult]) -> str:
    """ "1 failed"; errors count as failed and are named: "2 failed (2 errors)"."""
    checks = list(checks)
    failed = sum(not r.passed for r in checks)
    errors = sum(r.error and not r.passed for r in checks)
    return f"{failed} failed ({errors} error{'s' if errors != 1 else ''})" if errors else f"{failed} failed"


def counts(checks: Iterable[CheckResult]) -> str:
    """ "8 passed, 1 failed", or "0 passed, 2 failed (2 errors)"."""
    checks = list(checks)
    return f"{sum(r.passed for r in checks)} passed, {failures(checks)}"


def summary_lines(results: Iterable[CheckResult]) -> list[str]:
    """Per pipeline: each check, passed, FAILED or ERROR, with its key numbers or its summary."""
    lines = []
    for pipeline, checks in by_pipeline(results).items():
        lines.append(f"{pipeline}: {counts(checks)}")
        for result in checks:
            text = result.headline or result.summary
            if len(text) > SUMMARY_WIDTH:
                text = text[: SUMMARY_WIDTH - 3] + "..."
            lines.append(f"  {result.name:<17} {verdict(result):<7} {text}")
    return lines


def scalar_numbers(result: CheckResult) -> dict[str, bool | int | float | str]:
    """The result's key numbers that are one value each (not lists or tables), for junit properties."""
    numbers = plain(result.numbers)
    return {key: value for key, value in numbers.items() if isinstance(value, (bool, int, float, str))}


def junit_properties(result: CheckResult) -> list[tuple[str, object]]:
    """(name, value) pairs for a test's `user_properties`, so `--junitxml` reports carry them."""
    prefix = "pipeline_checks"
    properties = [
        (f"{prefix}.pipeline", result.pipeline),
        (f"{prefix}.check", result.name),
        (f"{prefix}.passed", result.passed),
        (f"{prefix}.error", result.error),
        (f"{prefix}.summary", result.headline or result.summary),
    ]
    return properties + [(f"{prefix}.{result.name}.{key}", value) for key, value in scalar_numbers(result).items()]


def markdown_lines(results: Iterable[CheckResult], environment: str) -> list[str]:
    """The summary as Markdown, e.g. for `$GITHUB_STEP_SUMMARY`: one table per pipeline."""
    results = list(results)
    grouped = by_pipeline(results)
    totals = "all passed" if all(r.passed for r in results) else failures(results)
    lines = [
        "# pipeline-checks",
        "",
        f"{len(results)} checks on {len(grouped)} pipelines: {totals}.",
        "",
        f"`{environment}`",
    ]
    for pipeline, checks in grouped.items():
        lines += ["", f"## {pipeline}: {counts(checks)}", ""]
        lines += ["| check | result | key numbers |", "| --- | --- | --- |"]
        for result in checks:
            text = (result.headline or result.summary).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {result.name} | {'passed' if result.passed else f'**{verdict(result)}**'} | {text} |")
    return lines


def write_report(
    results: Iterable[CheckResult], directory: Path, environment: str, extra: dict | None = None
) -> list[str]:
    """Write report.json, report.md and, with matplotlib, one BN statistics plot per pipeline with BN.

    `extra` adds its keys to report.json (e.g. "durations", with --pc-durations).

    Returns:
        Lines saying what was written (and what was not, and why).
    """
    results = list(results)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    grouped = by_pipeline(results)
    report = {
        "environment": environment,
        "pipelines": {
            name: {
                r.name: {
                    "passed": r.passed,
                    "error": r.error,
                    "summary": r.summary,
                    "details": r.details,
                    "numbers": r.numbers,
                }
                for r in checks
            }
            for name, checks in grouped.items()
        },
        # Errors are failures too: a run with any is not green.
        "totals": {
            "checks": len(results),
            "failed": sum(not r.passed for r in results),
            "errors": sum(r.error and not r.passed for r in results),
        },
        **(extra or {}),
    }
    path = directory / "report.json"
    path.write_text(json.dumps(plain(report), indent=2, default=str))
    markdown = directory / "report.md"
    markdown.write_text("\n".join(markdown_lines(results, environment)) + "\n", encoding="utf-8")
    written = [f"wrote {path}", f"wrote {markdown}"]
    for name, checks in grouped.items():
        layers = next((r.numbers.get("bn_layers") for r in checks if r.numbers.get("bn_layers")), None)
        if layers:
            written.append(plot_batchnorm(name, layers, directory))
    return written


def plot_batchnorm(pipeline: str, layers: list[dict], directory: Path) -> str:
    """Each BN layer's moving mean and variance (channel averages) against the data's."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"no BatchNorm plot for {pipeline}: matplotlib is not installed (pip install 'pipeline-checks[plots]')"
    index = range(len(layers))
    figure, (means, variances) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for axis, statistic in ((means, "mean"), (variances, "variance")):
        axis.plot(index, [layer[f"moving_{statistic}"] for layer in layers], "o-", label=f"moving {statistic}")
        axis.plot(index, [layer[f"data_{statistic}"] for layer in layers], "s-", label=f"data {statistic}")
        axis.set_ylabel(f"{statistic} (channel average)")
        axis.legend()
    variances.set_yscale("log")
    variances.set_xlabel("BatchNormalization layer (model order)")
    means.set_title(f"{pipeline}: BatchNorm moving statistics vs the training data's")
    path = directory / f"{pipeline}-batchnorm.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return f"wrote {path}"
