"""The suite's baseline test: fingerprint the pipeline's shared run, compare it with its file.

The file's life follows pytest-regressions (`perform_regression_check`): a missing baseline is
written and the test fails once, saying so; its `--force-regen` rewrites a baseline that
differs (and fails), `--regen-all` rewrites every one (and passes). `--pc-update-baselines`
writes or refreshes this suite's baselines and passes. The built-in pipelines fall back on
the baselines shipped with the package, which are read and never written; where none ships
for the environment's key, their test is skipped, saying so.

Every write of a baseline file replaces it whole (pytest-regressions' own writes go through
`dump_fn`, so they too), under the file's lock, which the session holds until it ends: a second
run writing the same file meanwhile is refused, naming it (baselines/writing.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_checks.baselines import outcome
from pipeline_checks.baselines.files import (
    BUILTIN_DIRECTORY,
    DEFAULT_DIRECTORY,
    Baseline,
    baseline_file,
    environment_key,
    versions,
)
from pipeline_checks.baselines.fingerprint import fingerprint
from pipeline_checks.baselines.writing import FileLock, remove_leftovers, unwritable
from pipeline_checks.model import devices
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.run.training import shared_run

# The baseline files this session has written, each with the lock it holds until the session ends.
LOCKS_KEY = pytest.StashKey[dict]()


def check_baseline(
    request: pytest.FixtureRequest,
    pipeline,
    seed: int,
    *,
    directory: Path | None,
    update: bool,
    builtin: bool,
    overrides: tuple,
    check_numbers: dict,
) -> CheckResult:
    """The baseline check's result for `pipeline`; writes the file where the rules above say so."""
    run = shared_run(pipeline, seed)
    now = Baseline(
        pipeline.name,
        environment_key(),
        seed,
        fingerprint(run, check_numbers),
        versions(),
        devices.machine(),
        tuple(sorted(check_numbers)),
    )
    root = request.config.rootpath
    path = baseline_file(root / (directory or DEFAULT_DIRECTORY), pipeline.name, now.key)
    shown = _relative(path, root)
    try:
        return _checked(request, pipeline, seed, now, path, shown, builtin=builtin, update=update, overrides=overrides)
    except OSError as error:  # what the writes and reads below do not name themselves (pytest-regressions' mkdir)
        raise ValueError(unwritable(shown, error)) from None


def _checked(
    request,
    pipeline,
    seed: int,
    now: Baseline,
    path: Path,
    shown: Path,
    *,
    builtin: bool,
    update: bool,
    overrides: tuple,
) -> CheckResult:
    root = request.config.rootpath
    if update:
        _write(request, now, path)
        return outcome.written(pipeline, shown, len(now.figures))
    shipped = baseline_file(BUILTIN_DIRECTORY, pipeline.name, now.key)
    if builtin and not path.is_file():
        if not shipped.is_file():  # versions the project has not recorded, or a run that differs between processes
            pytest.skip(
                f"no baseline of the built-in pipeline {pipeline.name!r} ships for {now.key}; "
                f"record one with --pc-update-baselines (docs/baselines.md, 'Built-in pipelines')"
            )
        return _compared(pipeline, Baseline.read(shipped), _relative(shipped, root), seed, now, overrides)
    if not path.is_file() and not _regenerating(request):
        _write(request, now, path)
        return outcome.missing(pipeline, shown)
    return _regression_check(request, pipeline, seed, now, path, shown, overrides)


def _compared(pipeline, baseline: Baseline, shown: Path, seed: int, now: Baseline, overrides) -> CheckResult:
    """The verdict of this run (`now`) against `baseline`, read from the file shown as `shown`."""
    return outcome.compared(
        pipeline, baseline, shown, seed, now.figures, overrides, now.versions, now.machine, now.checks
    )


def _regression_check(request, pipeline, seed, now: Baseline, path: Path, shown: Path, overrides) -> CheckResult:
    from pytest_regressions.common import perform_regression_check

    scratch = request.getfixturevalue("tmp_path")
    results: list[CheckResult] = []

    def check(obtained: Path, expected: Path) -> None:
        __tracebackhide__ = True
        result = _compared(pipeline, Baseline.read(expected), shown, seed, now, overrides)
        results.append(result)
        if not result.passed:
            raise AssertionError(str(result))

    try:
        perform_regression_check(
            datadir=scratch,
            original_datadir=scratch,
            request=request,
            check_fn=check,
            dump_fn=lambda target: _write(request, now, target) if target == path else now.write(target),
            extension=path.suffix,
            fullpath=path,
            obtained_filename=scratch / f"{path.stem}.obtained{path.suffix}",
        )
    except AssertionError:
        pass  # the verdict below says it
    except pytest.fail.Exception:  # --force-regen rewrote a baseline that differed
        return outcome.missing(pipeline, shown) if not results else _rewritten(results[-1], shown)
    return results[-1] if results else outcome.written(pipeline, shown, len(now.figures))


def _write(request, now: Baseline, path: Path) -> None:
    """Write the baseline file under its lock, which this session keeps until it ends."""
    locks = request.config.stash.setdefault(LOCKS_KEY, {})
    if path not in locks:
        lock = FileLock(path)
        lock.acquire()
        locks[path] = lock
        request.config.add_cleanup(lock.release)
        remove_leftovers(path)  # temporary files of runs killed while writing it: none can be writing now
    now.write(path)


def _rewritten(result: CheckResult, shown: Path) -> CheckResult:
    return CheckResult(
        result.name,
        False,
        f"{result.summary}; --force-regen rewrote {shown}",
        result.details,
        result.pipeline,
        result.numbers,
        result.headline,
    )


def _regenerating(request) -> bool:
    return bool(request.config.getoption("regen_all", False))


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path
