"""What fit reported of a run: its accuracy and loss by epoch, across stages, and chance.

The overfit check judges these curves and the baseline fingerprint records the epoch they
reach the target; both pick the accuracy curve with `accuracy_metric`, so they read the same
one. A custom loop has no fit history: one training-mode pass on its final weights (the
agreement's train-mode) stands for its numbers. A model compiled without an accuracy metric
is read the same way: its accuracy is the check's own, the class its outputs name in that pass
against the labels (`model.probes.class_accuracy`), and its loss curve is fit's.

A regression (float targets, `RawData.task`) has no class to count: its curve is R², the share of
the training targets' variance the model explains (`model.probes.explained_variance`). Where fit logs its
mean squared error (the compiled loss, or a metric "mse"), R² by epoch is 1 - that error / the
targets' variance, over fit's own batches, as fit's accuracy is; for another loss (absolute
error, Huber) it is the check's own R² of a training-mode pass on the final weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipeline_checks.model.batches import collect_batches
from pipeline_checks.model.losses import loss_facts
from pipeline_checks.model.probes import class_accuracy, explained_variance
from pipeline_checks.run.shared import agreement_of
from pipeline_checks.run.training import TrainingRun, stages_of

NO_FIT_HISTORY = "Fit's per-epoch numbers do not exist for a custom loop: the curve is this one pass."
PREDICTED = "accuracy of the predictions"  # the metric's name where the model compiles none
R2 = "R²"  # a regression's curve: the share of the targets' variance explained
SQUARED_ERROR = ("mse", "mean_squared_error")  # fit's logged names of a mean squared error


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
            For a regression: fit logs no mean squared error, and `curve` is that pass's R².
        variance: a regression's targets' variance (their mean squared deviation from their
            mean, averaged over outputs); None for a classification.
        squared_error: the logged name R² is read from ("loss", "mse"); "" where it is the check's own.
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
    variance: float | None = None
    squared_error: str = ""

    @property
    def regression(self) -> bool:
        return self.variance is not None

    @property
    def source(self) -> str:
        """Where a regression's R² comes from, for messages: "R², 1 - fit's loss (mean squared
        error) / the targets' variance 1.02", or the check's own pass."""
        if self.squared_error:
            error = "loss (mean squared error)" if self.squared_error == "loss" else f"logged {self.squared_error}"
            return f"R², 1 - fit's {error} / the targets' variance {self.variance:.3g}"
        return f"R² of a training-mode pass on the final weights over the {self.samples} training rows"

    @property
    def initial_r2(self) -> float:
        """A regression's R² before the first step, from the loss there where the loss is the mean
        squared error; 0 (a constant prediction's) where it is not known."""
        if self.squared_error == "loss" and math.isfinite(self.initial_loss) and self.variance:
            return 1.0 - self.initial_loss / self.variance
        return 0.0

    @property
    def chance_text(self) -> str:
        """What a model blind to its inputs reaches, for messages."""
        if self.regression:
            return "a constant prediction, the targets' mean, explains 0"
        return f"chance, the majority share: {self.chance:.2f}"

    def result(self, value: float) -> str:
        """A value of the curve, for messages: "0.9167 accuracy"; "R² 0.97"."""
        return f"R² {value:.2f}" if self.regression else f"{value:.4f} {self.metric}"

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
        if self.regression:
            return self._describe_regression()
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

    def _describe_regression(self) -> str:
        losses = ", ".join(f"{v:.3g}" for v in self.losses)
        before = f"loss {self.initial_loss:.3g} before the first step, then by epoch: {losses}."
        if self.custom:
            before = f"loss {self.initial_loss:.3g} before training, {self.losses[0]:.3g} after. {NO_FIT_HISTORY}"
        if self.predicted:
            return (
                f"Fit logs no mean squared error: {self.source} is {self.curve[0]:.2f} ({self.chance_text}); {before}"
            )
        values = ", ".join(f"{v:.2f}" for v in self.curve)
        stages = ", ".join(f"{label} ({epochs} epochs)" for label, epochs in self.stages)
        return f"{self.source}, by epoch: {values} ({self.chance_text}); {before}" + (
            f" Stages: {stages}." if stages else ""
        )

    def numbers(self) -> dict:
        if self.regression:
            return {"best_r2": self.best, "epochs": self.epochs, "targets_variance": self.variance}
        return {"best_accuracy": self.best, "epochs": self.epochs, "chance": self.chance}


def fit_curves(run: TrainingRun, tolerance: float) -> FitCurves | None:
    """Fit's curves over every stage of `run`; None where neither fit (or the model) reports an
    accuracy nor the model's outputs name a class for each image (`class_accuracy`).

    `tolerance` picks the agreement whose train-mode stands for a custom loop's numbers.
    A regression's curves are R² (`regression_curves`)."""
    if run.raw.task == "regression":
        return regression_curves(run)
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


def regression_curves(run: TrainingRun) -> FitCurves | None:
    """A regression's R² by epoch from fit's logged mean squared error, else the check's own R² on
    the final weights; None where the outputs do not match the targets row for row."""
    targets = np.asarray(run.y_train, dtype=np.float64)
    with np.errstate(all="ignore"):  # NaN targets: the finite ones' variance (numerics names the others)
        variance = float(
            np.mean(np.nanvar(np.where(np.isfinite(targets), targets, np.nan).reshape(len(targets), -1), axis=0))
        )
    common = dict(initial_loss=float(run.initial_loss), samples=len(targets), chance=0.0, variance=variance)
    name = None if run.custom_loop else squared_error_name(run)
    if name is None:
        r2 = predicted_r2(run)
        if r2 is None:
            return None
        losses = [float(agreement_of(run).values["train-mode"].get("loss", math.nan))] if run.custom_loop else []
        losses = losses or [float(v) for v in run.history.history.get("loss", [])]
        return FitCurves(R2, [r2], losses, custom=run.custom_loop, predicted=True, **common)
    errors, losses, labels = _by_epoch(run, name)
    with np.errstate(all="ignore"):
        curve = [1.0 - v / variance if variance > 0 else math.nan for v in errors]
    return FitCurves(R2, curve, losses, stages=labels, squared_error=name, **common)


def squared_error_name(run: TrainingRun) -> str | None:
    """The name fit logs its mean squared error under: a metric "mse" or "mean_squared_error", else
    "loss" where the compiled loss is mean squared error and no regularization adds to it; None, and
    None for several outputs (their R² is the outputs' average, which one error cannot give)."""
    if np.ndim(run.y_train) > 1 and np.shape(run.y_train)[1] > 1:
        return None
    history = run.history.history
    logged = next((name for name in history if name in SQUARED_ERROR), None)
    if logged is not None:
        return logged
    squared = loss_facts(getattr(run.model, "loss", None)).name in SQUARED_ERROR
    return "loss" if squared and "loss" in history and not run.model.losses else None


def predicted_r2(run: TrainingRun, training: bool = True) -> float | None:
    """The check's own R² of the run's final weights on the training rows, batched and shuffled as
    fit batches them: a training-mode pass with training-only layers held (`training=True`), or
    inference mode."""
    shuffle = bool(run.pipeline.fit_kwargs.get("shuffle", True))
    batches = collect_batches((run.x_infer, run.y_train), run.pipeline.batch_size, need_targets=True, shuffle=shuffle)
    return explained_variance(run.model, batches, training=training)


def _by_epoch(run: TrainingRun, name: str) -> tuple[list, list, tuple]:
    """Fit's logged `name` and loss by epoch, numbered across stages, with the stages' (label, epochs)."""
    stages = [stage for stage in stages_of(run) if stage.history is not None]
    if len(stages) <= 1:
        history = run.history.history
        return [float(v) for v in history[name]], [float(v) for v in history.get("loss", [])], ()
    logs = [stage.history.history for stage in stages]
    sizes = [max((len(v) for v in log.values()), default=0) for log in logs]
    values = [float(v) for log, size in zip(logs, sizes) for v in log.get(name, [math.nan] * size)]
    losses = [float(v) for log, size in zip(logs, sizes) for v in log.get("loss", [math.nan] * size)]
    return values, losses, tuple((stage.label, size) for stage, size in zip(stages, sizes))
