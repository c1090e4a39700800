"""The agreement oracle: the same compiled loss and metrics, on the same data, five ways.

- fit: what `fit` reported for its last epoch (a running average while weights changed);
- train-mode: a forward pass with `training=True`, batch by batch, state restored after, with
  dropout, noise, stochastic depth and augmentation layers held in inference mode: it differs
  from inference in BatchNormalization alone (batch statistics instead of moving ones);
- train-all: the same pass with those layers active too, as in fit (measured only where the
  model has them, to name what fit's numbers include);
- evaluate: `model.evaluate`;
- predict: the metrics recomputed from `model.predict` outputs (must equal evaluate; where
  Keras computes the loss from the logits beneath a head the loss does not fit, the cause
  names that: `logits_beneath.py`);
- recalibrated: `evaluate` after precise BatchNorm recalibration, then restored.

Which gaps open, and which close after recalibration, is the diagnosis. On a regression (float
targets that are values) every mode also gets the R² of its predictions, and gaps are read in
the targets' scale (`regression.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pipeline_checks._validation import check_number
from pipeline_checks.batchnorm.recalibration import Recalibration, recalibrate_batchnorm
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.model.batches import Batches, collect_batches
from pipeline_checks.model.layers import find_batchnorm, find_training_only_layers
from pipeline_checks.model.passes import (
    evaluate_metrics,
    metrics_of_outputs,
    predict_outputs,
    sample_count_metrics,
    train_mode_metrics,
)
from pipeline_checks.model.probes import class_accuracy, outputs_accuracy
from pipeline_checks.model.state import non_trainable_state
from pipeline_checks.oracle.findings import findings_of
from pipeline_checks.oracle.logits_beneath import logits_beneath
from pipeline_checks.oracle.regression import (
    OWN_R2,
    TargetSpread,
    ValueScale,
    fit_r_squared,
    loss_name_of,
    r_squared,
    regression_targets,
    spread_of,
    value_scales,
)
from pipeline_checks.results.verdict import Finding

OWN_ACCURACY = "predicted_accuracy"  # the agreement's own accuracy, for a model that compiles no metric
MODES = ("fit", "train-all", "train-mode", "evaluate", "predict", "recalibrated")
DEFAULT_TOLERANCE = 0.05
PREDICT_TOLERANCE = 1e-4  # predict and evaluate run the same inference graph: only float noise


@dataclass(frozen=True)
class BatchNormFacts:
    """What the diagnosis needs to know about the model's BatchNormalization layers."""

    count: int
    momenta: tuple[float, ...]
    updates_seen: int | None
    frozen: tuple[str, ...]
    frozen_moved_in_training: tuple[str, ...]
    replicas: int = 1  # of the model's distribution strategy
    batch_size: int | None = None  # fit's global batch
    unsynchronized: tuple[str, ...] = ()  # BN layers that normalize each replica's share of a batch alone


@dataclass(frozen=True)
class Agreement:
    """The five modes' metrics and what their gaps mean.

    Tolerance: `tolerance` is an absolute difference on the gated metrics (every compiled
    metric; the loss only when there is none, relatively), and a gap on an accuracy-like
    metric must also amount to at least two samples: one sample near the decision boundary
    flips between batch and population BatchNorm statistics in correct pipelines. predict
    must equal evaluate to 1e-4. On a regression (`task` "regression") the gated metrics are
    the R² of the predictions (`predicted_r2`) and every compiled metric, each gap divided by
    its unit in `scales` (the targets' std for mae and rmse, their variance for mse), so one
    tolerance means the same on every scale of targets.

    Which gaps fail: evaluate against train-mode (the same weights; BatchNorm is the only
    difference), in either direction; evaluate below fit (what fit reported is lost at
    inference). Evaluate above fit is no bug: fit averages its last epoch while the weights
    still improve, with dropout and augmentation active; it is noted with its mechanism.
    """

    values: dict[str, dict[str, float]]
    gated: tuple[str, ...]
    tolerance: float
    samples: int
    batchnorm: BatchNormFacts
    training_only_layers: tuple[str, ...]
    recalibration: Recalibration | None = field(repr=False)
    findings: tuple[Finding, ...] = ()
    task: str = "classification"
    scales: dict[str, ValueScale] = field(default_factory=dict)
    spread: TargetSpread | None = None  # of the targets, on a regression
    examples: str = "samples"  # what the inputs are, for messages: "images" or "examples"

    @property
    def metrics(self) -> tuple[str, ...]:
        """The loss first, then the compiled metrics, as evaluate names them."""
        return tuple(sorted(self.values["evaluate"], key=lambda name: name != "loss"))

    @property
    def agrees(self) -> bool:
        return not any(finding.failure for finding in self.findings)

    def gap(self, mode: str, other: str, metric: str) -> float | None:
        """`mode` minus `other` on `metric`, or None where a mode was not measured."""
        a, b = self.values.get(mode, {}).get(metric), self.values.get(other, {}).get(metric)
        return None if a is None or b is None else a - b

    def table(self) -> str:
        """One row per mode measured; without a BatchNormalization layer the recalibrated mode is
        evaluate itself, so it is not shown."""
        metrics = self.metrics
        widths = [max(12, len(m) + 2) for m in metrics]  # a long name (predicted_accuracy) keeps its gap
        rows = [f"{'mode':<13}" + "".join(f"{m:>{w}}" for m, w in zip(metrics, widths))]
        for mode in MODES:
            if mode in self.values and (mode != "recalibrated" or self.batchnorm.count):
                cells = (_cell(self.values[mode].get(m), w) for m, w in zip(metrics, widths))
                rows.append(f"{mode:<13}" + "".join(cells))
        return "\n".join(rows)

    @property
    def header(self) -> str:
        """Whether the modes agree, on how many samples, within what: the line above the table."""
        verdict = "Modes agree" if self.agrees else "Modes disagree"
        if self.task == "regression":
            on = ", ".join(_scaled_name(m, self.scales.get(m)) for m in self.gated)
            within = f"tolerance {self.tolerance:g} on {on}; the targets' std {self.spread.std:.4g}"
        else:
            within = f"tolerance {self.tolerance:g} absolute on {', '.join(self.gated)}"
        return f"{verdict} on the same {self.samples} samples ({within}):"

    @property
    def diagnosis(self) -> str:
        return "\n".join(str(finding) for finding in self.findings) or "All modes agree."

    def __str__(self) -> str:
        return f"{self.header}\n\n{self.table()}\n\n{self.diagnosis}"


def measure_agreement(
    model,
    data,
    history=None,
    batch_size: int | None = None,
    recalibrate: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    shuffle: bool = True,
) -> Agreement:
    """Measure the compiled loss and metrics in every mode; change nothing.

    Args:
        model: a compiled single-output Keras model.
        data: `(x, y)` arrays of model inputs and targets, or an iterable of (x, y) batches
            such as a `tf.data.Dataset`: the data the model was fit on.
        history: the `History` that `fit` returned, for the fit mode.
        batch_size: batch size for arrays, as fit used it (train-mode and recalibration
            statistics depend on it). Default: derived from `history` (samples / steps), else 32.
        recalibrate: also measure after precise BN recalibration (restored after), which
            tells stale BN statistics apart from other causes.
        tolerance: allowed absolute gap on metrics; see `Agreement`.
        shuffle: batch arrays in a fixed shuffled order, as `fit` (shuffle=True) batches
            them; pass False when fit ran with shuffle=False. Iterables keep their order.

    Returns:
        An `Agreement`: `print(agreement)` shows the table and diagnosis.
    """
    from pipeline_checks.model import compat

    _check_model(model)
    check_number("tolerance", tolerance, "a number in [0, 1)", 0, 1)
    if batch_size is None:
        batch_size = _fit_batch_size(history, data)
    batches = collect_batches(data, batch_size, need_targets=True, shuffle=shuffle)
    metric_state = non_trainable_state(model)
    try:
        values: dict[str, dict[str, float]] = {}
        if history is not None:
            values["fit"] = _from_history(history)
        training_only = tuple(f.path for f in find_training_only_layers(model))
        if training_only:
            values["train-all"], _ = train_mode_metrics(model, batches)
        values["train-mode"], moved = train_mode_metrics(model, batches, batchnorm_only=True)
        values["evaluate"] = evaluate_metrics(model, batches)
        predicted = predict_outputs(model, batches)
        values["predict"] = metrics_of_outputs(model, batches, predicted)
        regression = regression_targets(batches.targets)
        saturated = not regression and _saturated(predicted)  # a clipped probability, which values are not
        recalibration = None
        own = not regression and not any(m != "loss" for m in values["evaluate"])  # the class outputs name
        if own:
            _add_own_accuracy(values, model, batches, predicted)
        if regression:
            _add_own_r_squared(values, model, batches, predicted)
        if recalibrate:
            with recalibrate_batchnorm(model, batches_as_iterable(batches), shuffle=False) as recalibration:
                values["recalibrated"] = evaluate_metrics(model, batches)
                if own:
                    _add_own_accuracy(values, model, batches, modes=("recalibrated",))
                if regression:
                    _add_own_r_squared(values, model, batches, modes=("recalibrated",))
    finally:
        metric_state.restore()
    spread, scales = None, {}
    if regression:
        spread = spread_of(batches.targets)
        scales = value_scales(values["evaluate"], loss_name_of(model), spread)
        if "fit" in values:
            fit_r2 = fit_r_squared(values["fit"], loss_name_of(model), spread, bool(model.losses))
            if fit_r2 is not None:
                values["fit"][OWN_R2] = fit_r2
    if "fit" in values:
        values["fit"] = {m: values["fit"][m] for m in values["evaluate"] if m in values["fit"]}
    found_bn = find_batchnorm(model)
    facts = BatchNormFacts(
        count=len(found_bn),
        momenta=tuple(sorted({float(f.layer.momentum) for f in found_bn})),
        updates_seen=compat.training_steps(model),
        frozen=tuple(f.path for f in found_bn if not f.layer.trainable),
        frozen_moved_in_training=tuple(f.path for f in found_bn if not f.layer.trainable and id(f.layer) in moved),
        replicas=compat.replicas(model),
        batch_size=batch_size,
        unsynchronized=tuple(f.path for f in found_bn if not getattr(f.layer, "synchronized", False)),
    )
    gated = tuple(m for m in values["evaluate"] if m != "loss") or ("loss",)
    if regression and OWN_R2 in values["evaluate"]:  # the R² first, as the headline reports it, not the loss
        gated = (OWN_R2, *(m for m in gated if m not in (OWN_R2, "loss")))
    examples = "images" if np.ndim(batches.inputs[0]) == 4 else "examples"
    findings = findings_of(
        values,
        gated,
        tolerance,
        PREDICT_TOLERANCE,
        batches.total,
        facts,
        training_only,
        recalibration,
        saturated,
        _non_finite_variables(model),
        logits_beneath(model),
        counts=sample_count_metrics(model),
        scales=scales if regression else None,
        examples=examples,
    )
    return Agreement(
        values,
        gated,
        tolerance,
        batches.total,
        facts,
        training_only,
        recalibration,
        tuple(findings),
        "regression" if regression else "classification",
        scales,
        spread,
        examples,
    )


def assert_fit_evaluate_agree(
    model,
    data,
    history=None,
    batch_size: int | None = None,
    recalibrate: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    shuffle: bool = True,
) -> Agreement:
    """Fail when fit, train-mode, evaluate and predict disagree on the same data.

    Compares the model as it is; with `recalibrate=True` a recalibrated measurement
    (restored after) names the cause. Arguments as in `measure_agreement`.

    Raises:
        PipelineCheckFailure: with the table of modes, the gaps, the cause and the fix.

    Example:
        >>> history = model.fit(x, y, epochs=5, batch_size=3)
        >>> assert_fit_evaluate_agree(model, (x, y), history)   # stale BN: fails, says so
        >>> recalibrate_batchnorm(model, x, batch_size=3)
        >>> assert_fit_evaluate_agree(model, (x, y), history)   # passes
    """
    __tracebackhide__ = True
    agreement = measure_agreement(model, data, history, batch_size, recalibrate, tolerance, shuffle)
    if not agreement.agrees:
        raise PipelineCheckFailure(str(agreement))
    return agreement


def batches_as_iterable(batches: Batches):
    return list(zip(batches.inputs, batches.targets))


def _check_model(model) -> None:
    if not hasattr(model, "evaluate") or not hasattr(model, "predict"):
        raise TypeError(f"model must be a Keras model; received: {type(model).__name__}")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError(f"model {model.name!r} is not compiled: call model.compile(loss=..., metrics=[...]) first")
    if len(model.outputs or []) > 1:
        raise ValueError(f"model {model.name!r} has {len(model.outputs)} outputs; measure_agreement supports one")


def _add_own_accuracy(values: dict, model, batches, predicted=None, modes=("train-mode", "evaluate", "predict")):
    """For a model that compiles no metric, the accuracy of the class its outputs name (`OWN_ACCURACY`)
    in `modes`, where its targets are class labels: the loss alone, gated relatively, is no measure of
    a classifier's agreement (a loss of 0.053 against 0.070 is 2.4 tolerances and no image apart)."""
    for mode in modes:
        if mode == "train-mode":
            accuracy = class_accuracy(model, batches, training=True)
        elif mode in ("evaluate", "predict") and predicted is not None:
            accuracy = outputs_accuracy(model, predicted, batches)  # evaluate runs the same inference pass
        else:
            accuracy = class_accuracy(model, batches, training=False)
        if accuracy is not None:
            values[mode][OWN_ACCURACY] = accuracy


def _add_own_r_squared(values: dict, model, batches, predicted=None, modes=("train-mode", "evaluate", "predict")):
    """The R² of the predictions (`OWN_R2`) in `modes`, on targets that are values: a training-mode
    pass as train-mode runs it (BatchNorm alone in training mode), inference for the others."""
    for mode in modes:
        if mode in ("evaluate", "predict") and predicted is not None:
            outputs = predicted  # evaluate runs the same inference pass
        else:
            outputs = _outputs(model, batches, training=mode == "train-mode")
        r2 = r_squared(batches.targets, outputs)
        if r2 is not None:
            values[mode][OWN_R2] = r2


def _outputs(model, batches, training: bool) -> list:
    """The model's outputs batch by batch, dropout and augmentation held in inference mode, state restored."""
    from pipeline_checks.model import compat
    from pipeline_checks.model.forward import forward
    from pipeline_checks.model.layers import training_only_layers_in_inference

    state = non_trainable_state(model)
    try:
        with training_only_layers_in_inference(model):
            return [compat.to_numpy(forward(model, x, training=training)) for x in batches.inputs]
    finally:
        state.restore()


def _scaled_name(metric: str, scale: ValueScale | None) -> str:
    """How the header names a gated metric of a regression: 'predicted_r2', 'mae / std', 'msle (relative)'."""
    if scale is None:
        return f"{metric} (relative)"
    short = {"the targets' std": " / std", "the targets' variance": " / variance", "100%": " / 100%"}
    return metric + short.get(scale.of, "")


def _non_finite_variables(model) -> list[str]:
    from pipeline_checks.model import compat

    return [compat.variable_path(v) for v in model.variables if not np.isfinite(compat.to_numpy(v)).all()]


def _fit_batch_size(history, data) -> int | None:
    steps = (getattr(history, "params", None) or {}).get("steps")
    if not steps or not isinstance(data, tuple):
        return None
    return max(1, math.ceil(len(data[0]) / steps))


def _from_history(history) -> dict[str, float]:
    logs = getattr(history, "history", None)
    if not isinstance(logs, dict) or not logs:
        raise ValueError(f"history must be the History that model.fit returned; received: {history!r}")
    return {name: float(series[-1]) for name, series in logs.items() if not name.startswith("val_") and series}


def _saturated(outputs) -> bool:
    """Whether predicted probabilities reach 0 to within Keras' epsilon (1e-7), where a loss from
    them is clipped: evaluate's loss on a softmax output (TensorFlow sees through it to the
    logits) is then larger, without any bug."""
    values = np.concatenate([np.ravel(o) for o in outputs])
    return bool(values.size and values.min() >= 0 and values.max() <= 1 and values.min() <= 1e-7)


def _cell(value: float | None, width: int) -> str:
    """A table cell: the value, or "-" for a metric the mode does not report (fit has no predicted_accuracy)."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"
