"""The Case record of the detection matrix, and the small correct pipeline its rows vary.

The pipeline, its model and data live in `helpers.pipelines` (plain test helpers, no rows);
they are imported here too, as the rows and older tests import them from this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from helpers.pipelines import CLASSES, DATA, compiled_cnn, recalibrate_after_fit, small_pipeline

from pipeline_checks.model import compat
from pipeline_checks.pipelines.pipeline import Pipeline

__all__ = [
    "CLASSES",
    "DATA",
    "Case",
    "Expectation",
    "broken",
    "compiled_cnn",
    "correct",
    "recalibrate_after_fit",
    "small_pipeline",
    "where_caught",
    "where_fit_runs",
]


@dataclass(frozen=True)
class Expectation:
    """What the checks do with a row on one Keras backend, and why it differs there."""

    why: str
    causes: dict[str, str]
    raises: str | None = None


@dataclass(frozen=True)
class Case:
    """One row of the detection matrix.

    Attributes:
        pipeline: builds the pipeline (fresh each call); its name is the row's id.
        bug: the bug in a few words, for the matrix table.
        expected: check name -> a regular expression its failure message must match; these
            checks must fail, every other check must pass. Empty for a correct twin.
        on_backends: backend name ("tensorflow", "jax", "torch", or "keras2") -> the
            `Expectation` that replaces `expected` there (see `on`).
    """

    pipeline: Callable[[], Pipeline]
    bug: str
    expected: dict[str, str]
    on_backends: dict[str, Expectation] = field(default_factory=dict)

    def on(self, backends: str | tuple[str, ...], why: str, raises: str | None = None, **causes: str) -> Case:
        """This row on a backend (or several), where Keras itself behaves otherwise: `causes` as in
        `broken`, or `raises`, a regular expression for the PipelineRunError that checks which train raise."""
        names = (backends,) if isinstance(backends, str) else backends
        expectation = Expectation(why, causes, raises)
        return dataclasses.replace(self, on_backends={**self.on_backends, **dict.fromkeys(names, expectation)})

    @property
    def _here(self) -> Expectation | None:
        """The expectation for Keras 2 ("keras2") when it is in use and the row names it, else for the backend."""
        if not compat.is_keras3() and "keras2" in self.on_backends:
            return self.on_backends["keras2"]
        return self.on_backends.get(compat.backend())

    @property
    def causes(self) -> dict[str, str]:
        """Check name -> cause regex on the backend in use."""
        return self._here.causes if self._here else self.expected

    @property
    def raises(self) -> str | None:
        """The PipelineRunError regex where fit itself refuses the pipeline on this backend."""
        return self._here.raises if self._here else None

    @property
    def why(self) -> str:
        return self._here.why if self._here else ""

    @property
    def caught_by(self) -> frozenset[str]:
        return frozenset(self.causes)

    @property
    def id(self) -> str:
        try:
            return self.pipeline().name
        except ImportError:  # a tf.data row where TensorFlow is not installed (Keras 3 on JAX or torch)
            return self.pipeline.__name__.replace("_", "-")


def correct(pipeline: Callable[[], Pipeline], bug: str = "none (correct twin)") -> Case:
    return Case(pipeline, bug, {})


def broken(pipeline: Callable[[], Pipeline], bug: str, **causes: str) -> Case:
    """A broken pipeline, e.g. broken(f, "lr 1e9", numerics="NaN in the loss", overfit="")."""
    return Case(pipeline, bug, causes)


def where_fit_runs(cases: list[Case], pipeline: Callable[[], Pipeline]):
    """A skip mark for tests that need `pipeline` trained, on a backend where fit refuses it (its row says why)."""
    import pytest

    case = next(case for case in cases if case.pipeline is pipeline)
    return pytest.mark.skipif(case.raises is not None, reason=f"fit raises on {compat.backend()}: {case.why}")


def where_caught(cases: list[Case], pipeline: Callable[[], Pipeline], check: str):
    """A skip mark for tests of how `check` reports `pipeline`'s bug, on a backend where its row
    expects `check` to pass (the bug does not arise there, or fit refuses it; the row says why)."""
    import pytest

    case = next(case for case in cases if case.pipeline is pipeline)
    reason = f"{check} does not catch {pipeline.__name__} on {compat.backend()}: {case.why}"
    return pytest.mark.skipif(check not in case.caught_by, reason=reason)
