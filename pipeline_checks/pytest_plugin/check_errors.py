"""A check that gave no verdict, as an error result the summary and the reports count as failed.

A check's test can end without a result: the pipeline's own code raised (`build_model`,
`after_fit`), a baseline file could not be read, a fixture failed, or its pytest-xdist
worker died. Each becomes a `CheckResult` with `error=True` and `passed=False`, named by
the check family and the pipeline, whose summary is the test's error line, so that the
terminal summary, report.json, report.md and junit never call such a run green.

Imports nothing heavy: the plugin loads it in every pytest run.
"""

from __future__ import annotations

import re

import pytest

from pipeline_checks.pytest_plugin.keys import REPORT_ATTRIBUTE
from pipeline_checks.results.check_result import CheckResult

# The check family a test is running (set by `pc_check` and `pc_baseline` before the check starts).
CHECKING_KEY = pytest.StashKey[str]()
# (pipeline name, seed) -> node id of the test whose check first met the pipeline's failed run.
FIRST_RUN_FAILURE_KEY = pytest.StashKey[dict]()


def family_of_nodeid(nodeid: str) -> str:
    """The check a node id names: "labels" for `pipeline-checks::test_labels[p]`, else the test's name."""
    name = nodeid.rsplit("::", 1)[-1].split("[", 1)[0].split("@", 1)[0]
    return name[len("test_") :] if name.startswith("test_") else name


def error_result(family: str, pipeline: str, message: str) -> CheckResult:
    """A check on `pipeline` that raised `message` (its first line is the summary, the rest the details)."""
    first, _, rest = message.strip().partition("\n")
    return CheckResult(family, False, first, rest.strip(), pipeline, headline=first, error=True)


def failure_message(report: pytest.TestReport) -> str:
    """What a failed report says, without pytest's "Failed: " for `pytest.fail` and without the traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(report.longrepr or "")
    # A traceback's crash line is the exception, "E   ..." lines are its message; keep the exception.
    return re.sub(r"^Failed: ", "", message.strip()) or f"{report.when} failed"


def attach(report: pytest.TestReport, position: int, result: CheckResult) -> None:
    """Carry `result` on `report`, as a check's results travel (also from workers to the controller)."""
    setattr(report, REPORT_ATTRIBUTE, {"order": position, "results": [result.to_dict()]})


def first_test_meeting(config: pytest.Config, pipeline: str, seed: int, nodeid: str) -> str:
    """The node id of the first test that met the failed run of (`pipeline`, `seed`); `nodeid` if none did."""
    return config.stash.setdefault(FIRST_RUN_FAILURE_KEY, {}).setdefault((pipeline, seed), nodeid)


def forget_first_tests(config: pytest.Config, pipeline: str) -> None:
    """Drop what `first_test_meeting` kept for `pipeline`, once its runs are forgotten."""
    firsts = config.stash.get(FIRST_RUN_FAILURE_KEY, {})
    for key in [key for key in firsts if key[0] == pipeline]:
        del firsts[key]


def run_error_message(request: pytest.FixtureRequest, error: Exception, pipeline, seed: int) -> str:
    """The test's one message for a `PipelineRunError`: the pipeline's own error, and, where its run
    failed in an earlier test and is remembered, that this is the same failure as that test's."""
    from pipeline_checks.run.training import failed_shared_run

    try:
        failure = failed_shared_run(pipeline, seed)
    except TypeError:  # not a pipeline a run can be shared for (no weak reference to it)
        failure = None
    text = str(error)
    if failure is not None and (error is failure or error.__cause__ is failure.__cause__):
        first = first_test_meeting(request.config, pipeline.name, seed, request.node.nodeid)
        if first != request.node.nodeid:
            remembered = "a failed run is remembered for the session, not trained again"
            text = f"{failure}\n(the same failure as {first}: {remembered})"
    cause = type(error.__cause__).__name__
    return f"{text}\n(caused by: {cause}; run the check directly for the traceback)"
