"""What fit reported of a run: its accuracy and loss by epoch, across stages, and chance.

The overfit check judges these curves and the baseline fingerprint records the epoch they
reach the target; both pick the accuracy curve with `accuracy_metric`, so they read the same
one. A custom loop has no fit history: one training-mode pass on its final weights (the
agreement's train-mode) stands for its numbers. A model compiled without an accuracy metric
is read the same way: its accuracy is the check's own, the class its outputs name in that pass
against the labels (`model.probes.class_accuracy`), and its loss curve is fit's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipeline_checks.model.batches import collect_batches
from pipeline_checks.model.probes import class_accuracy
from pipeline_checks.run.shared import agreement_of
from pipeline_checks.run.training import TrainingRun, stages_of

NO_FIT_HISTORY = "Fit's per-epoch numbers do not exist for a custom loop: the curve is this one pass."
PREDICTED = "accuracy of the predictions"  # the metric's name where the model compiles none


def accuracy_metric(names: Iterable[str]) -> str | None:
    """The first of `names` (fit's logged metrics) that is an accuracy on the training data:
    "acc" in its name ("accuracy", "acc", "binary_accuracy"), not a "val_" one; None if none is."""
    return next((name for name in names if not name.startswith("val_") and "acc" in name), None)


@dataclass(frozen=True)
class FitCurves:
    """Fit's accuracy and loss by epoch, the loss before the first step, and chance.

    Attributes:
        metric: the accuracy's name, e.g. "accuracy".
        curve: the accuracy after each epoch, numbered across stages.
        losses: the loss after each epoch (NaN for epochs of a stage that logged none).
        initial_loss: the loss of a training-mode pass before the first step.
        samples: the images trained on.
        chance: the majority share of the labels: what predicting one class for every image reaches.
        stages: (label, epochs) of each stage of a run in stages; () for one fit.
        custom: a custom loop: `curve` and `losses` are one training-mode pass after it.
        predicted: the model compiles no accuracy metric: `curve` is one training-mode pass on
            the final weights, read by the check (`class_accuracy`); `losses` are still fit's.
    """

    metric: str
    curve: list
    losses: list
    initial_loss: float
    samples: int
    chance: float
    stages: tuple = ()
    custom: bool = False
    predicted: bool = False

    @property
    def who(self) -> str:
        return "the custom loop" if self.custom else "fit"

    @property
    def epochs(self) -> int:
        return len(self.losses) if self.predicted else len(self.curve)

    def at(self, epoch: int) -> str:
        """When the target was reached: "at epoch 3 of 10", with the stage where there are several."""
        if self.custom:
            return "by its end"
        if self.predicted:
            return f"by the end of its {self.epochs} epochs"
        where = f"at epoch {epoch} of {len(self.curve)}"
        for index, (label, epochs) in enumerate(self.stages, 1):
            if epoch <= epochs:
                return f"{where} (stage {index} of {len(self.stages)}, {label})"
            epoch -= epochs
        return where

    @property
    def span(self) -> str:
        return "by its end" if self.custom else f"in {self.epochs} epochs"

    @property
    def best(self) -> float:
        finite = [v for v in self.curve if math.isfinite(v)]
        return max(finite) if finite else math.nan

    def reached(self, target: float) -> int | None:
        """The first epoch whose accuracy is at least `target`; None if none is. The check's own
        accuracy is read once, on the final weights: it counts as the last epoch's."""
        if self.predicted:
            return self.epochs if self.curve[0] >= target else None
        return next((epoch for epoch, value in enumerate(self.curve, 1) if value >= target), None)

    def describe(self) -> str:
        if self.custom:
            return (
                f"{self.metric} of a training-mode pass on the custom loop's final weights: {self.curve[0]:.2f} "
                f"(chance, the majority share: {self.chance:.2f}); loss {self.initial_loss:.3g} before training, "
                f"{self.losses[0]:.3g} after. {NO_FIT_HISTORY}"
            )
        losses = ", ".join(f"{v:.3g}" for v in self.losses)
        if self.predicted:
            return (
                f"The model compiles no accuracy metric: the {self.metric} (the class its outputs name against the "
                f"label) in a training-mode pass on fit's final weights is {self.curve[0]:.2f} (chance, the majority "
                f"share: {self.chance:.2f}); loss {self.initial_loss:.3g} before the first step, then by epoch: "
                f"{losses}."
            )
        accuracies = ", ".join(f"{v:.2f}" for v in self.curve)
        losses = ", ".join(f"{v:.3g}" for v in self.losses)
        stages = ", ".join(f"{label} ({epochs} epochs)" for label, epochs in self.stages)
        return (
            f"{self.metric} by epoch: {accuracies} (chance, the majority share: {self.chance:.2f}); "
            f"loss {self.initial_loss:.3g} before the first step, then by epoch: {losses}."
            + (f" Stages: {stages}." if stages else "")
        )

    def numbers(self) -> dict:
        return {"best_accuracy": self.best, "epochs": self.epochs, "chance": self.chance}


def fit_curves(run: TrainingRun, tolerance: float) -> FitCurves | None:
    """Fit's curves over every stage of `run`; None where neither fit (or the model) reports an
    accuracy nor the model's outputs name a class for each image (`class_accuracy`).

    `tolerance` picks the agreement whose train-mode stands for a custom loop's numbers."""
    _, counts = np.unique(run.raw.labels, return_counts=True)  # any labels, even out of range
    chance = float(counts.max() / counts.sum())
    if run.custom_loop:
        values = agreement_of(run, tolerance).values["train-mode"]
        metric = accuracy_metric(values)
        loss = float(values.get("loss", math.nan))
        accuracy = values[metric] if metric else _predicted_accuracy(run)
        if accuracy is None:
            return None
        return FitCurves(
            metric or PREDICTED,
            [float(accuracy)],
            [loss],
            float(run.initial_loss),
            len(run.raw),
            chance,
            custom=True,
            predicted=metric is None,
        )
    history = run.history.history
    metric = accuracy_metric(history)
    if metric is None:
        accuracy = _predicted_accuracy(run)
        if accuracy is None:
            return None
        losses = [float(v) for v in history.get("loss", [])]
        return FitCurves(PREDICTED, [accuracy], losses, float(run.initial_loss), len(run.raw), chance, predicted=True)
    stages = [stage for stage in stages_of(run) if stage.history is not None]
    if len(stages) <= 1:
        curve, losses, labels = history[metric], history.get("loss", []), ()
    else:
        logs = [stage.history.history for stage in stages]
        sizes = [max((len(v) for v in log.values()), default=0) for log in logs]
        curve = [v for log, size in zip(logs, sizes) for v in log.get(metric, [math.nan] * size)]
        losses = [v for log, size in zip(logs, sizes) for v in log.get("loss", [math.nan] * size)]
        labels = tuple((stage.label, size) for stage, size in zip(stages, sizes))
    return FitCurves(
        metric,
        [float(v) for v in curve],
        [float(v) for v in losses],
        float(run.initial_loss),
        len(run.raw),
        chance,
        labels,
    )


def _predicted_accuracy(run: TrainingRun) -> float | None:
    """The check's own accuracy of the run's final weights: a training-mode pass over the training
    images, batched and shuffled as fit batches them, with training-only layers held."""
    shuffle = bool(run.pipeline.fit_kwargs.get("shuffle", True))
    batches = collect_batches(
        (run.x_infer, run.raw.labels), run.pipeline.batch_size, need_targets=True, shuffle=shuffle
    )
    return class_accuracy(run.model, batches, training=True)
