"""The suite's baseline test: fingerprint the pipeline's shared run, compare it with its file.

The file's life follows pytest-regressions (`perform_regression_check`): a missing baseline is
written and the test fails once, saying so; its `--force-regen` rewrites a baseline that
differs (and fails), `--regen-all` rewrites every one (and passes). `--pc-update-baselines`
writes or refreshes this suite's baselines and passes. The built-in pipelines fall back on
the baselines shipped with the package, which are read and never written; where none ships
for the environment's key, their test is skipped, saying so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_checks.baselines import report
from pipeline_checks.baselines.files import (
    BUILTIN_DIRECTORY,
    DEFAULT_DIRECTORY,
    Baseline,
    baseline_file,
    environment_key,
    versions,
)
from pipeline_checks.baselines.fingerprint import fingerprint
from pipeline_checks.model import devices
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.run.training import shared_run


def check_baseline(request: pytest.FixtureRequest, pipeline, seed: int, *, directory: Path | None, update: bool,
                   builtin: bool, overrides: tuple, check_numbers: dict) -> CheckResult:
    """The baseline check's result for `pipeline`; writes the file where the rules above say so."""
    run = shared_run(pipeline, seed)
    now = Baseline(pipeline.name, environment_key(), seed, fingerprint(run, check_numbers), versions(), devices.machine())
    root = request.config.rootpath
    path = baseline_file(root / (directory or DEFAULT_DIRECTORY), pipeline.name, now.key)
    shown = _relative(path, root)
    if update:
        now.write(path)
        return report.written(pipeline, shown, len(now.figures))
    shipped = baseline_file(BUILTIN_DIRECTORY, pipeline.name, now.key)
    if builtin and not path.is_file():
        if not shipped.is_file():  # versions the project has not recorded, or a run that differs between processes
            pytest.skip(f"no baseline of the built-in pipeline {pipeline.name!r} ships for {now.key}; "
                        f"record one with --pc-update-baselines (docs/baselines.md, 'Built-in pipelines')")
        return report.verdict(pipeline, Baseline.read(shipped), _relative(shipped, root), seed, now.figures, overrides, now.versions, now.machine)
    if not path.is_file() and not _regenerating(request):
        now.write(path)
        return report.missing(pipeline, shown)
    return _regression_check(request, pipeline, seed, now, path, shown, overrides)


def _regression_check(request, pipeline, seed, now: Baseline, path: Path, shown: Path, overrides) -> CheckResult:
    from pytest_regressions.common import perform_regression_check

    scratch = request.getfixturevalue("tmp_path")
    results: list[CheckResult] = []

    def check(obtained: Path, expected: Path) -> None:
        __tracebackhide__ = True
        result = report.verdict(pipeline, Baseline.read(expected), shown, seed, now.figures, overrides, now.versions, now.machine)
        results.append(result)
        if not result.passed:
            raise AssertionError(str(result))

    try:
        perform_regression_check(
            datadir=scratch, original_datadir=scratch, request=request, check_fn=check,
            dump_fn=now.write, extension=path.suffix, fullpath=path,
            obtained_filename=scratch / f"{path.stem}.obtained{path.suffix}",
        )
    except AssertionError:
        pass  # the verdict below says it
    except pytest.fail.Exception:  # --force-regen rewrote a baseline that differed
        return report.missing(pipeline, shown) if not results else _rewritten(results[-1], shown)
    return results[-1] if results else report.written(pipeline, shown, len(now.figures))


def _rewritten(result: CheckResult, shown: Path) -> CheckResult:
    return CheckResult(result.name, False, f"{result.summary}; --force-regen rewrote {shown}", result.details,
                       result.pipeline, result.numbers, result.headline)


def _regenerating(request) -> bool:
    return bool(request.config.getoption("regen_all", False))


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path
