"""Exceptions raised by pipeline-checks."""

import contextlib
from collections.abc import Callable


class PipelineCheckFailure(AssertionError):
    """A pipeline check found a defect; the message says what differs, the cause and the fix.

    It is an `AssertionError`, so pytest reports it as a test failure, not an error.
    """


class PipelineRunError(RuntimeError):
    """The pipeline's own code (build_model, fit with its arguments, after_fit) raised.

    The message names the pipeline, the step and the original error, which is chained.
    """


class DiagnoseError(ValueError):
    """The model, the images or the output path cannot be used; the message says which and why."""


@contextlib.contextmanager
def pipeline_step(pipeline, step: str, likely_cause: Callable[[], str | None] | None = None):
    """Name the pipeline and the step when the pipeline's own code raises inside it.

    `likely_cause`, called only then, names what the error's own message does not (e.g. a
    compile argument that Keras read as another one); it returns None where it sees nothing."""
    try:
        yield
    except Exception as error:
        cause = _likely_cause(likely_cause)
        hint = f"; likely cause: {cause}" if cause else ""
        message = f"Pipeline {pipeline.name!r}: {step} raised {type(error).__name__}: {error}{hint}"
        raise PipelineRunError(message) from error


def _likely_cause(likely_cause) -> str | None:
    if likely_cause is None:
        return None
    try:
        return likely_cause()
    except Exception:  # a hint that fails must not hide the error it was asked about
        return None
