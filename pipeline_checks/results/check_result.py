"""What a check returns: passed or not, a one-line summary, and the details behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline_checks.errors import PipelineCheckFailure


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one pipeline.

    Attributes:
        name: the check family, e.g. "frozen_layers".
        passed: whether the pipeline passed.
        summary: one line: what was checked, or what differs and by how much.
        details: the evidence, the likely cause and the fix, in a few lines.
        pipeline: the pipeline's name.
        numbers: the key measurements, for reports (e.g. {"fit_accuracy": 1.0}).
        headline: the key numbers in one line for the suite's summary; the summary stands in when empty.
        error: the check gave no verdict: its test raised or its worker died (`passed` is False then).
    """

    name: str
    passed: bool
    summary: str
    details: str = ""
    pipeline: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    headline: str = ""
    error: bool = False

    def raise_if_failed(self) -> CheckResult:
        """Raise `PipelineCheckFailure` with the full message when the check failed.

        Returns:
            This result, when it passed.
        """
        __tracebackhide__ = True
        if not self.passed:
            raise PipelineCheckFailure(str(self))
        return self

    def to_dict(self) -> dict[str, Any]:
        """This result as plain Python data (numbers as floats, ints, lists and dicts).

        Safe to JSON-encode and to send between processes (pytest-xdist workers send it to
        the controller); `CheckResult.from_dict` reads it back.
        """
        data = asdict(self)
        data["numbers"] = plain(self.numbers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "ERROR" if self.error else "FAILED"
        text = f"check {self.name} {verdict} on pipeline {self.pipeline!r}: {self.summary}"
        return f"{text}\n{self.details}" if self.details else text


def passed(name: str, pipeline, summary: str, details: str = "", headline: str = "", **numbers) -> CheckResult:
    return CheckResult(name, True, summary, details, pipeline.name, numbers, headline)


def failed(name: str, pipeline, summary: str, details: str = "", headline: str = "", **numbers) -> CheckResult:
    return CheckResult(name, False, summary, details, pipeline.name, numbers, headline)


def plain(value: Any) -> Any:
    """`value` with NumPy scalars and arrays, tuples and paths turned into plain Python data."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "tolist"):  # NumPy scalars and arrays, without importing NumPy
        return plain(value.tolist())
    if hasattr(value, "item"):
        return plain(value.item())
    return str(value)
