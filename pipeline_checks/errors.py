"""Exceptions raised by pipeline-checks."""

import contextlib


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
def pipeline_step(pipeline, step: str):
    """Name the pipeline and the step when the pipeline's own code raises inside it."""
    try:
        yield
    except Exception as error:
        raise PipelineRunError(f"Pipeline {pipeline.name!r}: {step} raised {type(error).__name__}: {error}") from error
