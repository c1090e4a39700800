"""The shared training run of a model with several outputs, as one output sees it.

The whole model trains once, with every loss. For one output (an `OutputView`) the run is the
same fit, read through that output: the model is the output's view (the same variables), the raw
data and targets are that output's, and every log (each epoch's, the first epoch's, the pass
before fit) is the output's own, under the names a one-output fit gives them (`kind_accuracy`
becomes `accuracy`). The weights, snapshots and batch losses are the whole run's.
"""

from __future__ import annotations

import dataclasses

from pipeline_checks.model.output_models import output_logs, output_model, output_names
from pipeline_checks.run.recording import RecordedHistory


def output_run(run, view):
    """The whole pipeline's `run` (a `training.TrainingRun`, which imports this module) seen through `view`'s output."""
    names = output_names(run.model)

    def ours(logs: dict) -> dict:
        return output_logs(logs, view.output, names)

    raw = run.raw.output(view.key)
    initial = ours(run.initial_logs)
    stages = [dataclasses.replace(stage, history=_history(stage.history, ours)) for stage in run.stages]
    return dataclasses.replace(
        run,
        pipeline=view,
        model=output_model(run.model, view.output),
        raw=raw,
        y_train=run.y_train[view.key],
        history=_history(run.history, ours),
        logged=_history(run.logged, ours),
        first_epoch_logs=ours(run.first_epoch_logs),
        initial_logs=initial,
        initial_loss=initial.get("loss", run.initial_loss),
        agreements={},
        stages=stages,
        whole=run,
    )


def _history(history, ours) -> RecordedHistory | None:
    """A fit's history with the output's logs only."""
    if history is None:
        return None
    return RecordedHistory(dict(history.params or {}), ours(history.history), list(history.epoch))
