"""Check: the pipeline learns its tiny dataset, and inference keeps what fit learned.

What "learns" means depends on how much of the model trains. A model that trains most of its
weights shapes its own features, and memorizes a dozen images within a few epochs: it must
reach the target accuracy (1.0 by default). A trainable head on a frozen base works on
features it cannot change; with `weights=None` (CI downloads nothing) those are random
projections that may separate the images slowly, or not at all, so such a head must show
that it learns, not that it memorizes.

A regression (float targets: `RawData.task`) has no class to count: fit must explain a share of
its training targets' variance, R² (`run/fit_curves.py` says where it is read), with the same
logic: a target for a memorizing model, learning for a head on a frozen base, a run short of its
automatic target continued where its budget shows learning.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks._validation import check_number
from pipeline_checks.batchnorm.recalibration import recalibrate_batchnorm
from pipeline_checks.checks.family import INITIAL_LOSS, SHARED_RUN, family
from pipeline_checks.model.batches import collect_batches
from pipeline_checks.model.heads import HeadOutputs, softmax_over_one_unit
from pipeline_checks.model.layers import find_batchnorm, find_training_only_layers
from pipeline_checks.model.probes import (
    class_accuracy,
    explained_variance,
    inputs_of_layers_holding,
    largest_spread,
    output_spread,
    spread,
)
from pipeline_checks.oracle.agreement import DEFAULT_TOLERANCE, Agreement, measure_agreement
from pipeline_checks.oracle.findings import MIN_SAMPLES, significant
from pipeline_checks.pipelines.input_kind import examples_word
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import Finding, verdict
from pipeline_checks.run.capacity import Capacity, capacity_of, loss_before_and_after
from pipeline_checks.run.continued_fit import MORE_EPOCHS, ContinuedFit, can_continue, continue_fit
from pipeline_checks.run.fit_curves import FitCurves, fit_curves, predicted_r2
from pipeline_checks.run.shared import agreement_of
from pipeline_checks.run.training import TrainingRun, shared_run
from pipeline_checks.run.variables import current_learning_rate

NAME = "overfit"
DEFAULT_TARGET = 1.0
# A regression's automatic target: fit must explain 90% of its training targets' variance (R² 0.9).
# Measured on the correct rows at seeds 0-4, the same on Keras 3 and 2 (docs/checks.md): TensorFlow's
# fuel-efficiency tutorial explains 0.946-0.957 in its own 100 epochs (its targets' noise, 1.5 mpg of
# 6.5, is most of the rest: with MAE it does not memorize noise in that budget, and 0.95 would send
# three of five seeds into a continuation of 1,000 epochs); the Conv-BN CNN explains 0.9 within 2 to 6
# of its 45 epochs, and at seed 3, whose initial loss is 13 times the targets' variance, after 133
# continued epochs of the 450 allowed. A pipeline that cannot learn from its inputs (steps far too
# small, a frozen or disconnected model) explains about 0, what predicting the targets' mean explains.
DEFAULT_R2 = 0.9
# A segmentation's automatic target: fit must take its per-pixel accuracy half of the way from chance (the
# majority share of the pixels) to every pixel. A dozen masks are thousands of pixel labels, which a small
# model does not memorize in a pipeline's budget; half the way is what a model that reads its pixels reaches
# and a model blind to them (steps far too small, masks shuffled apart from their images) does not. Measured
# on the correct segmentation row at seeds 0-4 (docs/checks.md).
SEGMENTATION_SHARE = 0.5
# Memorization is demanded when at least this share of the weights (parameters, statistics
# left out) trains: then the trainable part includes feature layers of its own.
MEMORIZING_SHARE = 0.5
# Differences between images below this are lost: a head adds them to weights and a bias of
# order 1 in float32 (7 digits), and normalization layers add an epsilon of ~1e-3 to the
# variance, so no layer after them can tell the images apart either.
NO_SPREAD = 1e-6
# Values that differ by more than this are plainly different images to any layer: a model that
# still gives them one output collapsed them itself (dead units), not its frozen part.
CLEARLY_DIFFERENT = 1e-3
# The loss in inference mode may wobble up a little where a head can learn only the class prior
# (its initial loss is already the prior's); a rise beyond this is fit going uphill.
ROSE = 0.01
# A model short of its target whose trained weights moved by less than this fraction of their
# size took steps far too small: named as the likely cause (never a failure on its own).
STALLED = 0.01
# A run short of its automatic target whose budget shows learning (its outputs depend on the images,
# and its loss fell by at least this share from before the first step or its accuracy beat chance by
# 2 images) is not done yet: its fit is continued (run/continued_fit.py) before it is judged.
FELL = 0.1
FIX_OPTION = "check_options={'overfit': {'target_accuracy': ...}} on the Pipeline"
FIX_R2_OPTION = "check_options={'overfit': {'target_r2': ...}} on the Pipeline"
# What keeps a model from its target when no mechanism shows.
USUAL_CAUSES = (
    "labels that do not match the images or the loss, a frozen or disconnected model, a learning rate far "
    "too high (diverges) or too low (stalls), or inputs scaled far off"
)
USUAL_REGRESSION_CAUSES = (
    "targets that do not match the inputs (shuffled apart from them), a frozen or disconnected model, a learning "
    "rate far too high (diverges) or too low (stalls), an output activation that cannot reach the targets (relu "
    "below 0, sigmoid outside 0..1), or inputs or targets scaled far off"
)


@family(NAME, SHARED_RUN, INITIAL_LOSS, per_output=True)
def check_overfit(
    pipeline,
    seed: int = 0,
    target_accuracy: float | None = None,
    tolerance: float | None = None,
    target_r2: float | None = None,
) -> CheckResult:
    """Fail unless fit learns the tiny data within the pipeline's epochs, and inference keeps it.

    A pipeline that cannot learn a dozen images (labels that do not match them, a learning
    rate of 0 or far off, dead units, a loss that does not reach the weights) has a bug long
    before it meets real data. What fit must reach:

    - `target_accuracy`, when given: as an argument, else as
      `Pipeline(check_options={"overfit": {"target_accuracy": 0.9}})`.
    - Otherwise, when at least half of the model's weights train (by parameter count;
      BatchNormalization statistics are not weights): 1.0. A model that trains most of its
      weights includes feature layers of its own and memorizes a dozen images; freezing a
      few layers (BatchNormalization, a stem) leaves it that capacity.
    - Otherwise (a head on a frozen base): fit must learn, not memorize. Whether frozen
      features separate the images within the epochs depends on weights the pipeline does
      not train (random ones under `weights=None`). The check fails when the trainable part
      demonstrably does not learn: no trainable weight moves, the model gives every image
      the same output although its trainable layers receive clearly different inputs (dead
      units), or the loss on the training images (inference mode, so deterministic) is not
      finite, or is over 1% higher with the trained weights than with their initial values
      (diverging, or a loss pointing the wrong way). A head that learns slowly passes.

    When the frozen part hands the trainable layers the same values for every image (they
    differ by at most 1e-6, as a frozen `weights=None` base whose BatchNormalization
    statistics are still 0 and 1 may leave them), no trainable layer can tell the images
    apart: fit must then reach the majority share (the best a model blind to the images can
    do), and memorization is not judged. A given target is judged as given.

    Then `evaluate` after precise BatchNorm recalibration must keep what fit reached: a
    shortfall fails when it exceeds `tolerance` and amounts to at least 2 samples
    (`oracle.findings.significant`), so one image near the decision boundary is not a failure.
    Binary heads (one sigmoid unit or one logit, metric "acc" or "binary_accuracy") are judged
    like any other; chance is the majority share of the labels.

    A segmentation (masks, a class per pixel) is judged by its per-pixel accuracy, against half of the
    way from chance (the majority share of the pixels) to every pixel where that target is automatic:
    a dozen masks are thousands of pixel labels, more than a small model memorizes in its budget.

    A regression (float targets) is judged by R², the share of its training targets' variance
    the model explains (1 - SSE/SST, as `keras.metrics.R2Score` defines it): from fit's logged
    mean squared error by epoch where fit logs one (the loss or a metric "mse"), else the check's
    own training-mode pass on the final weights. A memorizing model must reach `target_r2`
    (automatic: 0.9, measured on the correct regression rows: docs/checks.md); a head on a frozen
    base must learn, as above; a model blind to its inputs can explain 0 (the targets' mean). What
    inference mode explains after BatchNorm recalibration is reported, not judged: a fit and
    inference that disagree on values are check_agreement's to judge (it compares the loss mode by
    mode).

    Args:
        pipeline: a `Pipeline` whose model compiles an accuracy metric.
        seed: the seed of the shared training run.
        target_accuracy: training accuracy fit must report in some epoch, in (0, 1] (per pixel for a
            segmentation); None: automatic (above). Unless given, `@family` takes it from the pyproject table, then
            from `check_options["overfit"]`.
        tolerance: how far below what fit reached the recalibrated evaluate may be, in [0, 1);
            None: 0.05. Resolved like `target_accuracy`.
        target_r2: for a regression, the R² fit must reach in some epoch, in (0, 1]; None:
            automatic (0.9 for a memorizing model). Resolved like `target_accuracy`; each target
            is read for its task only.

    Returns:
        A `CheckResult` with the epoch the target was reached, the accuracies, the chance
        level and the share of the weights that train.

    Example:
        >>> check_overfit(pipeline).raise_if_failed()
        >>> check_overfit(pipeline, target_accuracy=0.9)
        >>> check_overfit(regression_pipeline, target_r2=0.9)
    """
    accuracy = None if target_accuracy is None else _checked_target("target_accuracy", target_accuracy)
    r2 = None if target_r2 is None else _checked_target("target_r2", target_r2)
    tolerance = DEFAULT_TOLERANCE if tolerance is None else _checked_tolerance(tolerance)
    run = shared_run(pipeline, seed)
    fit = fit_curves(run, tolerance)
    if fit is None:
        return _no_r2(run) if run.raw.task == "regression" else _no_accuracy(run, tolerance)
    target = r2 if fit.regression else accuracy
    capacity = capacity_of(run)
    if not capacity.weights:
        frozen = f"frozen: {listed(capacity.frozen_layers)}" if capacity.frozen_layers else "it holds no weights"
        fix = "set trainable = True on the layers to train, then compile() again."
        untrainable = Finding("the model has no trainable weights, so fit cannot learn anything", frozen, fix)
        return verdict(NAME, pipeline, [untrainable], "", **fit.numbers())
    goal = _goal_of(target, capacity, fit, run.raw.task)
    reached = fit.reached(goal.target if goal.target is not None else _default(fit))
    if reached is not None:
        return _judge_inference(run, fit, goal, capacity, reached, tolerance)
    held = _reached_with_training_only_layers_held(run, fit, goal, tolerance)
    if held:
        return _judge_inference(run, fit, goal, capacity, len(fit.curve), tolerance, note=held)
    signals = _Signals(run, capacity)
    if target is None and signals.blind:
        return _judge_blind(run, fit, capacity, signals, tolerance)
    if goal.target is not None:
        return _short_of_target(run, fit, goal, capacity, signals, tolerance, automatic=target is None)
    return _judge_learning(run, fit, goal, capacity, signals)


def _checked_target(name: str, value) -> float:
    return check_number(name, value, "a number in (0, 1]", 0, 1, low_open=True, high_open=False)


def _default(fit: FitCurves) -> float:
    return DEFAULT_R2 if fit.regression else DEFAULT_TARGET


def _fix_option(fit: FitCurves) -> str:
    return FIX_R2_OPTION if fit.regression else FIX_OPTION


def _checked_tolerance(value) -> float:
    return check_number("tolerance", value, "a number in [0, 1)", 0, 1)


def _no_accuracy(run: TrainingRun, tolerance: float) -> CheckResult:
    logged = "the model compiles" if run.custom_loop else "fit logged"
    names = agreement_of(run, tolerance).values["train-mode"] if run.custom_loop else run.history.history
    missing = Finding(
        f"{'the model' if run.custom_loop else 'fit'} reports no accuracy, so memorization cannot be judged",
        f"{logged} {listed(sorted(names))}",
        fix="compile with metrics=['accuracy'].",
    )
    return verdict(NAME, run.pipeline, [missing], "")


def _no_r2(run: TrainingRun) -> CheckResult:
    outputs = getattr(run.model, "output_shape", "unknown")
    missing = Finding(
        "the model's outputs cannot be compared with the regression targets, so memorization cannot be judged",
        f"targets of shape {tuple(np.shape(run.y_train))}, outputs of shape {outputs}, or targets that are all "
        "the same value (no variance to explain)",
        fix="give the model one linear output per target value, and targets that vary.",
    )
    return verdict(NAME, run.pipeline, [missing], "")


# --- what fit must reach ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Goal:
    """A target accuracy for fit, or None: the trainable part must learn, not memorize."""

    target: float | None
    reason: str


def _goal_of(target: float | None, capacity: Capacity, fit: FitCurves, task: str) -> _Goal:
    if target is not None:
        return _Goal(target, f"Target {target:g} as given")
    if capacity.share >= MEMORIZING_SHARE and task == "segmentation":
        share = fit.chance + SEGMENTATION_SHARE * (1 - fit.chance)
        why = (
            f"a model that trains most of its weights takes its per-pixel accuracy half of the way from chance "
            f"({fit.chance:.2f}) to every pixel"
        )
        return _Goal(share, f"Target {share:.2f} because {capacity.describe()}: {why}")
    if capacity.share >= MEMORIZING_SHARE and fit.regression:
        why = "a model that trains most of its weights explains nearly all of its training targets' variance"
        return _Goal(DEFAULT_R2, f"Target R² {DEFAULT_R2:g} because {capacity.describe()}: {why}")
    if capacity.share >= MEMORIZING_SHARE:
        why = "a model that trains most of its weights memorizes a dozen images"
        return _Goal(DEFAULT_TARGET, f"Target 1 because {capacity.describe()}: {why}")
    return _Goal(None, f"No target: only {capacity.describe()}, so the trainable part must learn, not memorize")


# --- the judgements ---------------------------------------------------------------------------


def _reached_with_training_only_layers_held(run, fit: FitCurves, goal: _Goal, tolerance: float) -> str:
    """Fit's running accuracy counts with dropout, noise and augmentation active: where the final
    weights reach the target in a training pass with those held (the agreement's train-mode),
    the model learned the images. Returns what to say, or "" where it did not."""
    if goal.target is None:
        return ""
    agreement = agreement_of(run, tolerance)
    if not agreement.training_only_layers:
        return ""
    if fit.regression:
        learned = None if fit.predicted else predicted_r2(run)
    else:
        learned = agreement.values["train-mode"].get(fit.metric, agreement.values["train-mode"].get("accuracy"))
    if learned is None or learned < goal.target:
        return ""
    return (
        f"Fit's running {fit.metric} peaked at {fit.best:.4f} with {listed(agreement.training_only_layers)} active; "
        f"with them held in inference mode, a training pass on the final weights reaches {learned:.4f}."
    )


def _judge_inference(
    run,
    fit: FitCurves,
    goal: _Goal,
    capacity: Capacity,
    reached: int,
    tolerance: float,
    note: str = "",
    continued: ContinuedFit | None = None,
) -> CheckResult:
    """Fit reached the target (or its continuation did): evaluate after recalibration must keep
    it, but for one sample (for a regression, what inference explains is reported)."""
    reference = goal.target if goal.target is not None else _default(fit)
    if continued is None:
        agreement = agreement_of(run, tolerance)
        evaluated = _evaluated(run, fit, agreement)
    else:
        agreement, evaluated = continued.inference
        note = _continued_note(fit, continued)
    numbers = {
        "reached_at_epoch": reached,
        "fit_accuracy": fit.curve[-1],
        "recalibrated_accuracy": evaluated,
        "target": reference,
        "trainable_share": capacity.share,
        **fit.numbers(),
        **_continued_numbers(continued),
    }
    reached_it = _reached_it(fit, reference, reached, continued)
    if fit.regression:
        return _regression_reached(run, fit, goal, reached_it, evaluated, note, numbers)
    shortfall = math.nan if evaluated is None else reference - evaluated
    findings = []
    batchnorm = bool(find_batchnorm(run.model))  # without it, the recalibrated evaluate is evaluate itself
    if shortfall > 0 and significant(shortfall, fit.samples, tolerance):
        lost = round(shortfall * fit.samples)
        findings.append(_inference_shortfall(run.model, batchnorm, f"{reached_it}, but", evaluated, lost, fit.samples))
    memorized = "" if goal.target is not None else "; it memorized all the same, which evaluate must keep"
    kept = "reports no accuracy" if evaluated is None else f"{evaluated:.4f}"
    notes = [str(agreement)] if findings else [fit.describe(), f"{goal.reason}{memorized}.", note]
    evaluate = "evaluate after recalibration" if batchnorm else "evaluate"
    return verdict(NAME, run.pipeline, findings, f"{reached_it}; {evaluate} {kept}", notes, **numbers)


def _regression_reached(run, fit: FitCurves, goal: _Goal, reached_it: str, evaluated, note: str, numbers: dict):
    """A regression that reached its target: what inference mode explains is told, not judged."""
    numbers = dict(numbers, fit_r2=numbers.pop("fit_accuracy"), recalibrated_r2=numbers.pop("recalibrated_accuracy"))
    batchnorm = bool(find_batchnorm(run.model))
    mode = "inference mode after BatchNorm recalibration" if batchnorm else "inference mode"
    kept = "cannot be read" if evaluated is None else f"explains {evaluated:.2f} on the same rows"
    agreement = (
        "What inference explains is not judged here: fit and inference that disagree on values are "
        "check_agreement's to judge (it compares the loss mode by mode)."
    )
    notes = [fit.describe(), f"{goal.reason}.", note, agreement]
    return verdict(NAME, run.pipeline, [], f"{reached_it}; {mode} {kept}", notes, **numbers)


def _inference_shortfall(model, batchnorm: bool, reached_it: str, evaluated: float, lost: int, samples: int):
    """Inference lost what fit reached, told with the mechanisms `model` has: BatchNorm recalibration
    only where it has BatchNormalization, its training-only layers only where it has some."""
    evaluate = "evaluate after BatchNorm recalibration" if batchnorm else "evaluate"
    summary = f"{reached_it} {evaluate} gives {evaluated:.4f} on the same images ({lost} of {samples} samples)"
    training_only = listed(layer.path for layer in find_training_only_layers(model))
    if batchnorm:
        detail = "the gap survives recalibration, so stale BN statistics do not explain it"
    elif training_only:
        detail = f"fit's accuracy counts with {training_only} active, evaluate with the same weights in inference mode"
    else:
        detail = "evaluate runs the weights fit ended with, in inference mode"
    looks = f"preprocessing, or {training_only} active in fit" if training_only else "preprocessing"
    return Finding(summary, detail, fix=f"look at the agreement's diagnosis below ({looks}).")


def _short_of_target(
    run, fit: FitCurves, goal: _Goal, capacity: Capacity, signals: _Signals, tolerance: float, automatic: bool
) -> CheckResult:
    """Fit stayed below a target: where the target is automatic and the budget shows learning,
    the fit is continued first (not done yet); then named with the mechanism when one shows."""
    cause = _cannot_learn(run, capacity, signals)
    continued, not_continued = None, ""
    if cause is None and automatic:
        not_continued = _learning_not_shown(fit, signals) or can_continue(run)
        if not not_continued:
            continued = _continued(run, fit, goal.target, tolerance)
            if continued.reached:
                reached = fit.epochs + continued.epochs
                return _judge_inference(run, fit, goal, capacity, reached, tolerance, continued=continued)
    cause = cause or _stalled(run, capacity)
    state_it = f"if the trainable part truly cannot reach {goal.target:.4g}, state what it reaches: {_fix_option(fit)}."
    checks = "run the labels, numerics and variables_change checks; then tune the learning rate or epochs; "
    best, span, more = fit.best, fit.span, ""
    if continued is not None:
        best = max(fit.best, continued.best)
        span = f"{fit.span} and {continued.epochs} more continued from its end"
        more = f" {_continued_note(fit, continued)}"
    elif not_continued:
        more = f" Not continued: {not_continued}."
    if fit.regression:
        seen = (
            f"{fit.who} explains {best:.2f} of the targets' variance at best ({fit.source}), below the target "
            f"{goal.target:.4g}, {span}"
        )
    else:
        seen = f"{fit.who} reached {best:.4f} {fit.metric} at best, below the target {goal.target:.4g}, {span}"
    usual = USUAL_REGRESSION_CAUSES if fit.regression else USUAL_CAUSES
    short = Finding(
        seen,
        f"{fit.describe()} {goal.reason}.{more}",
        fix=state_it if cause else checks + state_it,
        cause="" if cause else usual,
    )
    findings = [short, cause] if cause else [short]
    numbers = {"target": goal.target, "trainable_share": capacity.share, **fit.numbers()}
    return verdict(NAME, run.pipeline, findings, "", join=": ", **numbers, **_continued_numbers(continued))


# --- not done yet: the fit continued ------------------------------------------------------------


def _learning_not_shown(fit: FitCurves, signals: _Signals) -> str:
    """What the program's own budget lacks to show that the model learns, for messages; "" where it
    shows learning: the outputs depend on the images, and the loss fell from its start or the
    accuracy rose above chance. Either is learning: a small learning rate lowers the loss for many
    epochs before the first image flips (Adam 1e-4 on the small CNN: loss 1.8 to 1.03 in 40 epochs,
    accuracy still at chance), and a 100 times too small one lowers neither (1e-5: 5% in 15)."""
    finite = [v for v in fit.losses if math.isfinite(v)]
    last, start = (finite[-1] if finite else math.nan), fit.initial_loss
    fell = start - last >= FELL * abs(start)  # abs: some losses are negative
    if fit.regression:  # R² up by FELL from where it started (a constant prediction's 0 where unknown)
        rose = fit.best - fit.initial_r2 >= FELL
        above = f"R² {fit.best:.2f} at best is not {FELL:g} above its {fit.initial_r2:.2f} before the first step"
    else:
        rose = round((fit.best - fit.chance) * fit.samples) >= MIN_SAMPLES
        above = f"{fit.metric} {fit.best:.2f} at best is not above chance ({fit.chance:.2f}) by {MIN_SAMPLES} images"
    lacking = []
    if not (fell or rose):
        lacking.append(f"the loss went from {start:.4g} to {last:.4g}, not down by {FELL:.0%}, and {above}")
    if not signals.outputs > NO_SPREAD:
        lacking.append(f"the outputs differ by at most {signals.outputs:.2g} between images")
    if not lacking:
        return ""
    return f"its {fit.epochs} epochs show no learning to continue ({'; '.join(lacking)})"


def _continued(run, fit: FitCurves, target: float, tolerance: float) -> ContinuedFit:
    """The run's fit continued up to the target, with what evaluate after recalibration gives on
    the continued model (its agreement, and the accuracy read from it)."""
    shuffle = bool(run.pipeline.fit_kwargs.get("shuffle", True))
    targets = run.y_train if fit.regression else run.raw.labels
    batches = collect_batches((run.x_infer, targets), run.pipeline.batch_size, need_targets=True, shuffle=shuffle)
    held = fit.predicted or bool(agreement_of(run, tolerance).training_only_layers)

    def accuracy(logs: dict) -> float:
        """Fit's running accuracy (a regression's R²); the check's own in a pass with training-only
        layers held where the model compiles none, or where dropout and augmentation count in fit's."""
        if fit.regression:
            error = math.nan if fit.predicted else float(logs.get(fit.squared_error, math.nan))
            logged = 1.0 - error / fit.variance if fit.variance > 0 else math.nan
            own = explained_variance(run.model, batches, training=True) if held else None
        else:
            logged = math.nan if fit.predicted else float(logs.get(fit.metric, math.nan))
            own = class_accuracy(run.model, batches, training=True) if held else None
        return logged if own is None else max(own, logged) if math.isfinite(logged) else own

    def inference() -> tuple[Agreement, float | None]:
        agreement = measure_agreement(
            run.model,
            (run.x_infer, run.y_train),
            batch_size=run.pipeline.batch_size,
            tolerance=tolerance,
            shuffle=shuffle,
        )
        return agreement, _evaluated(run, fit, agreement)

    return continue_fit(run, fit.epochs, accuracy, target, inference)


def _evaluated(run, fit: FitCurves, agreement: Agreement) -> float | None:
    """The accuracy evaluate gives after BatchNorm recalibration; for a model that compiles no
    accuracy, the check's own accuracy of inference-mode predictions after the same recalibration.
    For a regression: the check's own R² in inference mode after the same recalibration."""
    if fit.regression:
        shuffle = bool(run.pipeline.fit_kwargs.get("shuffle", True))
        with recalibrate_batchnorm(run.model, run.x_infer, batch_size=run.pipeline.batch_size, shuffle=shuffle):
            return predicted_r2(run, training=False)
    if not fit.predicted:
        inference = agreement.values.get("recalibrated", agreement.values["evaluate"])
        return inference.get(fit.metric, inference.get("accuracy"))
    shuffle = bool(run.pipeline.fit_kwargs.get("shuffle", True))
    batch_size = run.pipeline.batch_size
    batches = collect_batches((run.x_infer, run.raw.labels), batch_size, need_targets=True, shuffle=shuffle)
    with recalibrate_batchnorm(run.model, run.x_infer, batch_size=batch_size, shuffle=shuffle):
        return class_accuracy(run.model, batches, training=False)


def _reached_it(fit: FitCurves, reference: float, epoch: int, continued: ContinuedFit | None) -> str:
    if fit.regression:
        value = fit.curve[min(epoch, len(fit.curve)) - 1] if continued is None else continued.curve[-1]
        when = fit.at(epoch) if continued is None else f"after {continued.epochs} more epochs continued from its end"
        return f"{fit.who} explains {value:.2f} of the targets' variance ({fit.source}) {when}, target {reference:g}"
    own = " (the predictions' accuracy: the model compiles no accuracy metric)" if fit.predicted else ""
    if continued is None:
        return f"{fit.who} reached {fit.metric} {reference:.4g} {fit.at(epoch)}{own}"
    return (
        f"{fit.who} reached {fit.metric} {reference:.4g} after {continued.epochs} more epochs continued "
        f"from its end{own}"
    )


def _continued_note(fit: FitCurves, continued: ContinuedFit) -> str:
    ran = f"{continued.epochs} of at most {continued.budget} ({MORE_EPOCHS} times its {fit.epochs} epochs)"
    return (
        f"In its own {fit.epochs} epochs fit reached {fit.best:.4f} and its loss fell, so it was continued from its "
        f"final state, every variable put back after: {fit.metric} {_rises(continued.curve)} ({ran}, "
        f"{continued.seconds:.1f} s)."
    )


def _rises(curve) -> str:
    """Where a continued curve first reached each new best: "0.67 at continued epoch 1, 0.75 at 11"
    (a hundred epochs read in a line)."""
    best, rises = -math.inf, []
    for epoch, value in enumerate(curve, 1):
        if value > best:
            best = value
            rises.append(f"{value:.2f} at {'continued epoch ' if not rises else ''}{epoch}")
    return ", ".join(rises) if rises else "not measured"


def _continued_numbers(continued: ContinuedFit | None) -> dict:
    if continued is None:
        return {}
    return {"continued_epochs": continued.epochs, "continued_seconds": continued.seconds}


def _judge_learning(run, fit: FitCurves, goal: _Goal, capacity: Capacity, signals: _Signals) -> CheckResult:
    """A head on a frozen base that did not memorize: it must show that it learns."""
    numbers = {"target": None, "trainable_share": capacity.share, **fit.numbers()}
    cause = _cannot_learn(run, capacity, signals)
    if cause is not None:
        stuck = Finding("the trainable part does not learn", f"{fit.describe()} {goal.reason}.")
        return verdict(NAME, run.pipeline, [stuck, cause], "", join=": ", **numbers)
    before, after = signals.losses
    if fit.regression:
        reached = f"R² {fit.best:.2f} at best ({fit.chance_text}); {DEFAULT_R2:g} not demanded"
    else:
        reached = f"{fit.metric} {fit.best:.2f} at best (chance {fit.chance:.2f}); 1.0 not demanded"
    learns = (
        f"the trainable part learns: loss {before:.4g} before fit, {after:.4g} after (inference mode), "
        f"{reached}, {capacity.share:.1%} of the weights train"
    )
    notes = [fit.describe(), f"{goal.reason}.", f"To demand a level anyway: {_fix_option(fit)}."]
    return verdict(NAME, run.pipeline, [], learns, notes, loss_before=before, loss_after=after, **numbers)


def _judge_blind(run, fit: FitCurves, capacity: Capacity, signals: _Signals, tolerance: float) -> CheckResult:
    """The frozen part gives the trainable layers the same values for every image."""
    blind = signals.received
    numbers = {
        "target": fit.chance,
        "trainable_share": capacity.share,
        "trainable_input_spread": blind,
        **fit.numbers(),
    }
    seen = (
        f"the trainable layers receive the same values for all {fit.samples} images (they differ by at most "
        f"{blind:.2g}) from the frozen {listed(capacity.frozen_layers)}"
    )
    best_blind = "R² 0 (the targets' mean)" if fit.regression else f"the majority share {fit.chance:.2f}"
    why = (
        f"No trainable layer can tell the images apart, so fit can reach {best_blind} at "
        "most. A frozen base with random weights (weights=None: CI downloads nothing) and BatchNormalization "
        "statistics still at 0 and 1 shrinks its features this way."
    )
    findings = []
    if fit.regression:
        below = fit.chance - fit.best > tolerance
    else:
        below = significant(fit.chance - fit.best, fit.samples, tolerance) and fit.best < fit.chance
    if below:
        findings.append(
            Finding(
                f"{fit.who} reached {fit.result(fit.best)} at best, below {best_blind} "
                f"that a model blind to the images reaches: {seen}",
                f"{fit.describe()} {why}",
                cause="the head does not even learn the targets' mean"
                if fit.regression
                else "the head does not even learn the class prior",
                fix="check the labels and the learning rate.",
            )
        )
    reached = f"R² {fit.best:.2f}" if fit.regression else f"{fit.metric} {fit.best:.2f}"
    not_judged = f"memorization not judged: {seen}; {fit.who} reached {reached}, {best_blind}"
    to_judge = f"To judge memorization, load the base's pretrained weights, or state a target: {_fix_option(fit)}."
    notes = [] if findings else [fit.describe(), why, to_judge]
    return verdict(NAME, run.pipeline, findings, not_judged, notes, **numbers)


# --- why a trainable part cannot learn ----------------------------------------------------------


class _Signals:
    """How far apart the images are at the model's inputs, at what its trainable layers
    receive, and at its outputs; the loss before and after fit. Each measured once, on demand."""

    def __init__(self, run: TrainingRun, capacity: Capacity):
        self.run, self.capacity = run, capacity

    @functools.cached_property
    def inputs(self) -> float:
        return spread(self.run.x_infer)

    @functools.cached_property
    def received(self) -> float | None:
        """The largest spread in what the outermost layers holding trained weights receive;
        None where the model is no graph of layers to probe (a subclassed model)."""
        if not self.capacity.frozen:
            return self.inputs  # nothing frozen: the first trained layers receive the inputs
        run = self.run
        values = inputs_of_layers_holding(run.model, run.trainable, run.x_infer, run.pipeline.batch_size)
        return None if not values else largest_spread(values)

    @functools.cached_property
    def outputs(self) -> float:
        return output_spread(self.run.model, self.run.x_infer, self.run.pipeline.batch_size)

    @functools.cached_property
    def losses(self) -> tuple[float, float]:
        return loss_before_and_after(self.run, self.capacity)

    @property
    def blind(self) -> bool:
        """The frozen part erased the images: the inputs differ, what the trainable layers receive does not."""
        return self.inputs > NO_SPREAD and self.received is not None and self.received <= NO_SPREAD


def _softmax_over_one_unit(run: TrainingRun) -> bool:
    """Whether the run's model ends in a softmax over one unit (`model.heads.softmax_over_one_unit`)."""
    x = run.x_infer[: run.pipeline.batch_size]
    return softmax_over_one_unit(run.model, x, HeadOutputs.of(run.model, x))


def _cannot_learn(run: TrainingRun, capacity: Capacity, signals: _Signals) -> Finding | None:
    """The mechanism that keeps the trainable part from learning, when one shows; else None."""
    if not capacity.moved:
        return Finding(
            f"none of the {capacity.weights} trainable weights moved {_steps(run)}",
            f"{_trainer(run)} ran with {_learning_rate(run)}",
            cause="a learning rate of 0, or no gradient reaches them (stop_gradient, a non-differentiable op "
            "before the output)",
            fix="set a learning rate above 0 (e.g. 1e-3 for Adam); see check_variables_change for the weights.",
        )
    received = signals.received
    if signals.outputs <= NO_SPREAD and received is not None and received > CLEARLY_DIFFERENT:
        if _softmax_over_one_unit(run):
            return Finding(
                f"the model gives all {len(run.x_infer)} {examples_word(run.x_infer)}s the same output",
                f"after fit its outputs differ by at most {signals.outputs:.2g}: its last layer is a softmax over "
                "one unit, exp(z) / exp(z) = 1 for every image whatever the weights",
                cause="a softmax over a single output unit (check_labels names it)",
                fix="for two classes use one unit with activation='sigmoid' and binary_crossentropy, or two softmax "
                "units with sparse_categorical_crossentropy.",
            )
        return Finding(
            f"the model gives all {len(run.x_infer)} {examples_word(run.x_infer)}s the same output",
            f"after fit its outputs differ by at most {signals.outputs:.2g}, while its trainable layers receive "
            f"values that differ by up to {received:.3g}",
            cause="dead units (ReLUs that no image activates), a saturated activation or a zero scale inside the "
            "trainable part",
            fix="look for ReLU layers with large negative biases, or a learning rate so high that it killed them; "
            "lower it, or use another initializer.",
        )
    before, after = signals.losses
    if not math.isfinite(after):
        return Finding(
            f"the loss is {after:.4g} after fit",
            "on the training images, in inference mode",
            cause="training went non-finite",
            fix="run check_numerics: it names what went non-finite first, and why.",
        )
    if after - before > ROSE * abs(before):  # abs: some losses are negative (cosine similarity)
        return Finding(
            f"the loss rose from {before:.4g} to {after:.4g}",
            "on the training images in inference mode (so no dropout noise), from the trained weights as fit "
            f"found them to their values {_steps(run, 'after')}",
            cause="fit moves the weights, but not downhill: a learning rate far too high, or a loss that does not "
            "measure the error",
            fix="lower the learning rate (e.g. 1e-3 for Adam); check that the loss falls as predictions improve.",
        )
    return None


def _stalled(run: TrainingRun, capacity: Capacity) -> Finding | None:
    """Steps too small to fit in the epochs: a diagnosis for a model short of its target, never a
    failure by itself (a head on poor frozen features moves little and is still correct)."""
    if not capacity.step < STALLED:
        return None
    return Finding(
        f"the trainable weights moved by {capacity.step:.2%} of their size",
        f"{_steps(run)} with {_learning_rate(run)}, against their size at initialization",
        cause="steps far too small to fit in these epochs",
        fix="raise the learning rate (e.g. 1e-3 for Adam, 1e-2 for SGD) or train for more epochs.",
    )


def _steps(run: TrainingRun, preposition: str = "in") -> str:
    """How long training ran, for messages: "in 12 steps", or "in the custom loop"."""
    return f"{preposition} the custom loop" if run.custom_loop else f"{preposition} {len(run.batch_losses)} steps"


def _trainer(run: TrainingRun) -> str:
    return "the custom loop" if run.custom_loop else "fit"


def _learning_rate(run: TrainingRun) -> str:
    rate = current_learning_rate(run.model)
    return "a learning rate that cannot be read" if rate is None else f"learning rate {rate:g}"
