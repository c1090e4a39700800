"""A pipeline run's fingerprint: the figures a change to the pipeline would move.

Read from the shared training run, so it costs no training of its own: the loss at
initialization and after each epoch, fit's and evaluate's metrics at the end, the first epoch
at which fit reached the overfit target, the class names, the parameter count and FLOPs, the
predictions on the tiny set, and the scalar numbers of the checks that ran on that run.
Figures are flat, dotted names ("loss.epoch_3", "checks.numerics.last_loss"), so tolerances
and reports address each one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.run.fit_curves import accuracy_metric
from pipeline_checks.run.training import TrainingRun, stages_of

# Check numbers that measure the machine, not the pipeline: never part of a fingerprint.
TIMING_SUFFIXES = ("seconds", "_time")


def fingerprint(run: TrainingRun, check_numbers: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run's figures, by dotted name, as plain Python data.

    Args:
        run: a pipeline's training run (`shared_run`), after its checks have run or before.
        check_numbers: check family -> that check's `CheckResult.numbers` on this run; their
            scalar numbers become `checks.<family>.<name>` figures (timings left out).
    """
    figures: dict[str, Any] = {
        "data.classes": [str(name) for name in run.raw.class_names],
        "data.images": len(run.y_train),
    }
    figures["loss.initial"] = float(run.initial_loss)
    figures.update(_epoch_losses(run))
    if run.history is not None:
        figures.update({f"fit.{name}": float(values[-1]) for name, values in run.history.history.items() if values})
    figures.update(_evaluate(run))
    target_epoch = _target_epoch(run)
    if target_epoch is not False:
        figures["target_epoch"] = target_epoch
    figures["params.total"] = int(run.model.count_params())
    figures["params.trainable"] = int(sum(int(np.prod(w.shape)) for w in run.model.trainable_weights))
    flops = _flops(run.model)
    if flops is not None:
        figures["flops"] = flops
    figures.update(_predictions(run))
    for family, numbers in sorted((check_numbers or {}).items()):
        for name, value in numbers.items():
            if _is_scalar(value) and not name.endswith(TIMING_SUFFIXES):
                figures[f"checks.{family}.{name}"] = value
    return figures


def _epoch_losses(run: TrainingRun) -> dict[str, float]:
    """fit's loss after each epoch, numbered across stages (a custom loop has none)."""
    losses = [
        value
        for stage in stages_of(run)
        if stage.history is not None
        for value in stage.history.history.get("loss", ())
    ]
    return {f"loss.epoch_{epoch}": float(value) for epoch, value in enumerate(losses, 1)}


def _evaluate(run: TrainingRun) -> dict[str, float]:
    from pipeline_checks.run.shared import agreement_of

    values = agreement_of(run).values.get("evaluate", {})
    return {f"evaluate.{name}": float(value) for name, value in values.items()}


def _target_epoch(run: TrainingRun):
    """The first epoch whose fit accuracy reached the overfit target; None if none did; False without accuracy.

    The accuracy is the metric check_overfit reads (`accuracy_metric`), in `run.history` (the
    last stage's, for a run in stages); the target is check_overfit's as the pipeline's
    check_options resolve it (a pyproject table reaches the check only as an argument),
    DEFAULT_TARGET where it is automatic."""
    from pipeline_checks.checks.family import resolved_options
    from pipeline_checks.checks.overfit import DEFAULT_TARGET, check_overfit

    if run.history is None:
        return False
    metric = accuracy_metric(run.history.history)
    if metric is None:
        return False
    target = resolved_options(check_overfit, run.pipeline)["target_accuracy"]
    target = DEFAULT_TARGET if target is None else target
    return next((epoch for epoch, value in enumerate(run.history.history[metric], 1) if value >= target), None)


def _flops(model) -> int | None:
    from pipeline_checks.model.flops import count_flops

    try:
        return int(count_flops(model).flops)
    except (ValueError, TypeError, NotImplementedError):  # a model whose input shape is not fixed
        return None


def _predictions(run: TrainingRun) -> dict[str, Any]:
    """Predicted class and output per image of the tiny set, at inference, as served; a regression's
    predicted values (no class: a threshold on a value would flip on a change far below its tolerance)."""
    outputs = compat.to_numpy(run.model.predict(run.x_infer, batch_size=run.pipeline.batch_size, verbose=0))
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if run.raw.task == "regression":
        return {"predictions.value": [[float(v) for v in row] for row in outputs]}
    if outputs.shape[1] > 1:
        classes = outputs.argmax(axis=1)
    else:  # one unit: a sigmoid's probability, or a logit
        threshold = 0.5 if outputs.min() >= 0 and outputs.max() <= 1 else 0.0
        classes = (outputs[:, 0] > threshold).astype(int)
    return {
        "predictions.class": [int(c) for c in classes],
        "predictions.output": [[float(v) for v in row] for row in outputs],
    }


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float))
