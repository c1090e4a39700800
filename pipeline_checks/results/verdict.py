"""One shape for what a check finds, and one way to turn findings into a `CheckResult`.

Every family and the agreement oracle describe what they found as `Finding`s; `verdict`
fails the check when any finding is a failure, so every failure message has one form:

    check labels FAILED on pipeline 'x': <summary>; <summary>
      <summary>: <detail>
        Likely cause: <cause>
        Fix: <fix>
      <note>
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline_checks.results.check_result import CheckResult, failed, passed

INDENT = "  "


@dataclass(frozen=True)
class Finding:
    """One thing a check found: what, the evidence, its likely cause and the fix.

    Attributes:
        summary: one clause for the result's summary, e.g. "labels run 1..3 for 3 classes".
        detail: the evidence behind it, in a sentence or two.
        fix: what to change in the pipeline; "" where the finding needs none.
        cause: the likely cause, where it is not already said by the detail.
        failure: whether it fails the check; a finding that does not (a remark next to a
            failure, such as a cause the oracle rules out) is listed in the details only.
    """

    summary: str
    detail: str = ""
    fix: str = ""
    cause: str = ""
    failure: bool = True

    def __str__(self) -> str:
        lines = [f"{self.summary}: {self.detail}" if self.detail else self.summary]
        if self.cause:
            lines.append(f"{INDENT}Likely cause: {self.cause}")
        if self.fix:
            lines.append(f"{INDENT}Fix: {self.fix}")
        return "\n".join(lines)


def verdict(
    name: str,
    pipeline,
    findings: Iterable[Finding],
    passed_summary: str,
    notes: str | Iterable[str] = (),
    headline: str = "",
    join: str = "; ",
    **numbers,
) -> CheckResult:
    """The result of check `name`: failed when any finding is a failure, else passed.

    A failed result's summary joins the failures' summaries with `join`; its details list
    every finding, indented, then the notes. A passed result's summary is `passed_summary`
    and its details are the notes (findings that are not failures come first).

    Args:
        name: the family, e.g. "labels".
        pipeline: the `Pipeline` judged.
        findings: what the check found, in the order to report them.
        passed_summary: the summary when nothing failed: what was checked, with its numbers.
        notes: lines said either way (e.g. frozen layers left unchanged), as given.
        headline: the key numbers in one line for the suite's summary.
        join: what joins the failures' summaries.
        **numbers: the key measurements, for reports.
    """
    findings = list(findings)
    notes = [notes] if isinstance(notes, str) else list(notes)
    listed = [textwrap.indent(str(finding), INDENT) for finding in findings]
    details = "\n".join([*listed, *(note for note in notes if note)])
    failures = [finding for finding in findings if finding.failure]
    if failures:
        return failed(name, pipeline, join.join(f.summary for f in failures), details, headline, **numbers)
    return passed(name, pipeline, passed_summary, details, headline, **numbers)
