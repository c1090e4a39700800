"""Moved: the public `Recorder` lives in `pipeline_checks.attach.recorder`, above the checks it runs.

`pipeline_checks.run.recorder.Recorder` stays importable for code written before the move;
import `pipeline_checks.Recorder` instead.
"""


def __getattr__(name: str):
    if name == "Recorder":
        from pipeline_checks.attach.recorder import Recorder

        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
