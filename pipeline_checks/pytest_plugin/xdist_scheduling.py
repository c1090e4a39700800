"""pytest-xdist scheduling that keeps all tests of one pipeline on one worker.

Imported only when pytest-xdist runs the session. xdist's `--dist loadgroup` groups tests
by an `@group` suffix that its workers add to node ids from the `xdist_group` mark; on
pytest 9 that suffix no longer reaches the node id (pytest-xdist 3.8 sets an attribute
pytest stopped reading), so the groups fall apart and each worker trains every pipeline it
gets a test of. This scheduler groups by the suffix when there is one, and otherwise by
the declared pipeline named in the test's parameter id, e.g.
`pipeline-checks::test_labels[resnet-photos]` -> `resnet-photos`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from xdist.scheduler import LoadGroupScheduling

GROUP_PREFIX = "pipeline:"


def pipeline_group(nodeid: str, names: Iterable[str]) -> str | None:
    """The declared pipeline a node id's parameters name, as its group; None when none does."""
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
