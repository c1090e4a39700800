"""pytest-xdist scheduling that keeps all tests of one pipeline on one worker.

Imported only when pytest-xdist runs the session. xdist's `--dist loadgroup` groups tests
by an `@group` suffix that its workers add to node ids from the `xdist_group` mark; on
pytest 9 that suffix no longer reaches the node id (pytest-xdist 3.8 sets an attribute
pytest stopped reading), so the groups fall apart and each worker trains every pipeline it
gets a test of. This scheduler groups by the suffix when there is one, and otherwise by
the declared pipeline named in the test's parameter id, e.g.
`pipeline-checks::test_labels[resnet-photos]` -> `resnet-photos`.

A worker that dies inside a pipeline's test (a callback's `os._exit`, the kernel's OOM killer)
would die again in each replacement given the pipeline's other tests, as each trains it
again, until xdist gives up ("maximum crashed workers reached") with other pipelines unrun.
So the pipeline's tests that had not run are reported as errors naming the crash, once, and
the session carries on with the other pipelines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from xdist.scheduler import LoadGroupScheduling

GROUP_PREFIX = "pipeline:"


def pipeline_group(nodeid: str, names: Iterable[str]) -> str | None:
    """The declared pipeline a node id's parameters name, as its group; None when none does."""
    if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist group's suffix, where pytest still adds it
        nodeid = nodeid[: nodeid.rfind("@")]
    match = re.search(r"\[(.*)\]$", nodeid)
    if not match:
        return None
    params = match.group(1)
    # Longest names first: "resnet-photos" before "resnet".
    for name in sorted(names, key=len, reverse=True):
        if params == name or params.startswith(name + "-") or params.endswith("-" + name) or f"-{name}-" in params:
            return GROUP_PREFIX + name
    return None


class PipelineScheduling(LoadGroupScheduling):
    """`--dist loadgroup`, where a declared pipeline's tests form one group."""

    def __init__(self, config, log=None, pipeline_names: Iterable[str] = ()) -> None:
        super().__init__(config, log)
        self.pipeline_names = tuple(pipeline_names)

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.rfind("@") > nodeid.rfind("]"):
            return super()._split_scope(nodeid)
        return pipeline_group(nodeid, self.pipeline_names) or nodeid

    def remove_node(self, node) -> str | None:
        """As xdist's, except that a pipeline's tests not run when its worker crashed are not
        given to another worker: they are reported as errors naming the crash."""
        workload = self.assigned_work.get(node, {})
        crashed = next((nodeid for unit in workload.values() for nodeid, done in unit.items() if not done), None)
        pipeline = crashed and pipeline_group(crashed, self.pipeline_names)
        if pipeline is None:
            return super().remove_node(node)
        del self.assigned_work[node]
        not_run = [
            nodeid
            for nodeid, done in workload.pop(self._split_scope(crashed)).items()
            if not done and nodeid != crashed
        ]
        # The worker's other work units go back to the queue, as xdist puts them back.
        self.workqueue.update((scope, unit) for scope, unit in workload.items() if self._pending_of({scope: unit}))
        for other in self.assigned_work:
            self._reschedule(other)
        for nodeid in not_run:
            self._report_not_run(nodeid, crashed, pipeline[len(GROUP_PREFIX) :], node)
        return crashed

    def _report_not_run(self, nodeid: str, crashed: str, name: str, node) -> None:
        """An error report for a test left unrun by its pipeline's crash, carrying its error result."""
        import pytest

        from pipeline_checks.pytest_plugin import check_errors
        from pipeline_checks.results import summary

        message = (
            f"not run: worker {node.gateway.id!r} crashed while running {crashed!r}\n"
            f"(the other tests of pipeline {name!r} are not run, as each would train it again and crash again; "
            "run that test without -n to see why)"
        )
        result = check_errors.error_result(check_errors.family_of_nodeid(nodeid), name, message)
        location = (nodeid.split("::")[0], None, nodeid.split("::", 1)[-1])
        for when, outcome, longrepr in (("setup", "failed", message), ("teardown", "passed", None)):
            report = pytest.TestReport(nodeid, location, {}, outcome, longrepr, when, user_properties=[])
            report.node = node
            if when == "setup":
                check_errors.attach(report, self.collection.index(nodeid) if self.collection else 0, result)
            else:  # junit writes a test's properties from its teardown report
                report.user_properties = summary.junit_properties(result)
            self.config.hook.pytest_runtest_logreport(report=report)
