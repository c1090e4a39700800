"""Exceptions raised by pipeline-checks."""


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
