"""Exceptions raised by pipeline-checks."""


class PipelineCheckFailure(AssertionError):
    """A pipeline check found a defect; the message says what differs, the cause and the fix.

    It is an `AssertionError`, so pytest reports it as a test failure, not an error.
    """
