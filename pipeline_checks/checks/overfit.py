"""Check: the pipeline learns its tiny dataset, and inference keeps what fit learned.

What "learns" means depends on how much of the model trains. A model that trains most of its
weights shapes its own features, and memorizes a dozen images within a few epochs: it must
reach the target accuracy (1.0 by default). A trainable head on a frozen base works on
features it cannot change; with `weights=None` (CI downloads nothing) those are random
projections that may separate the images slowly, or not at all, so such a head must show
that it learns, not that it memorizes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks._validation import check_number
from pipeline_checks.checks.family import INITIAL_LOSS, SHARED_RUN, family
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.model import compat
from pipeline_checks.model.forward import forward
from pipeline_checks.model.state import VariableSnapshot
from pipeline_checks.oracle.agreement import DEFAULT_TOLERANCE
from pipeline_checks.oracle.findings import significant
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.run.shared import agreement_of
from pipeline_checks.run.training import TrainingRun, shared_run, stages_of
from pipeline_checks.run.variables import FROZEN, TRAINED, change, current_learning_rate, variable_roles

NAME = "overfit"
OPTIONS = ("target_accuracy", "tolerance")  # what check_options["overfit"] may set
DEFAULT_TARGET = 1.0
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
NO_FIT_HISTORY = "Fit's per-epoch numbers do not exist for a custom loop: the curve is this one pass."
FIX_OPTION = "check_options={'overfit': {'target_accuracy': ...}} on the Pipeline"


@family(NAME, SHARED_RUN, INITIAL_LOSS)
def check_overfit(
    pipeline, seed: int = 0, target_accuracy: float | None = None, tolerance: float | None = None
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
    differ by at most 1e-6, e.g. a frozen `weights=None` MobileNetV2 whose BatchNormalization
    statistics are still 0 and 1 shrinks them to ~1e-11), no trainable layer can tell the
    images apart: fit must then reach the majority share (the best a model blind to the images
    can do), and memorization is not judged. A given target is judged as given.

    Then `evaluate` after precise BatchNorm recalibration must keep what fit reached: a
    shortfall fails when it exceeds `tolerance` and amounts to at least 2 samples
    (`oracle.findings.significant`), so one image near the decision boundary is not a failure.
    Binary heads (one sigmoid unit or one logit, metric "acc" or "binary_accuracy") are judged
    like any other; chance is the majority share of the labels.

    Args:
        pipeline: a `Pipeline` whose model compiles an accuracy metric.
        seed: the seed of the shared training run.
        target_accuracy: training accuracy fit must report in some epoch, in (0, 1]. Default:
            the pipeline's `check_options["overfit"]["target_accuracy"]`, else automatic (above).
        tolerance: how far below what fit reached the recalibrated evaluate may be, in [0, 1).
            Default: `check_options["overfit"]["tolerance"]`, else 0.05.

    Returns:
        A `CheckResult` with the epoch the target was reached, the accuracies, the chance
        level and the share of the weights that train.

    Example:
        >>> check_overfit(pipeline).raise_if_failed()
        >>> check_overfit(pipeline, target_accuracy=0.9)
    """
    pipeline, seed = checked_pipeline(pipeline), checked_seed(seed)
    target, tolerance = _settings(pipeline, target_accuracy, tolerance)
    run = shared_run(pipeline, seed)
    fit = _fit_of(run, tolerance)
    if fit is None:
        logged = "the model compiles" if run.custom_loop else "fit logged"
        names = agreement_of(run, tolerance).values["train-mode"] if run.custom_loop else run.history.history
        return failed(
            NAME,
            pipeline,
            f"{'the model' if run.custom_loop else 'fit'} reports no accuracy, so memorization cannot be judged",
            f"{logged} {', '.join(sorted(names))}.\n  Fix: compile with metrics=['accuracy'].",
        )
    capacity = _capacity_of(run)
    if not capacity.weights:
        return failed(
            NAME,
            pipeline,
            "the model has no trainable weights, so fit cannot learn anything",
            f"Frozen: {listed(capacity.frozen_layers)}.\n  Fix: set trainable = True on the layers to train, then compile() again.",
            **fit.numbers(),
        )
    goal = _goal_of(target, capacity)
    reached = fit.reached(goal.target if goal.target is not None else DEFAULT_TARGET)
    if reached is not None:
        return _judge_inference(run, fit, goal, capacity, reached, tolerance)
    held = _reached_with_training_only_layers_held(run, fit, goal, tolerance)
    if held:
        return _judge_inference(run, fit, goal, capacity, len(fit.curve), tolerance, note=held)
    signals = _Signals(run, capacity)
    if target is None and signals.blind:
        return _judge_blind(run, fit, capacity, signals, tolerance)
    if goal.target is not None:
        return _short_of_target(run, fit, goal, capacity, signals)
    return _judge_learning(run, fit, goal, capacity, signals)


# --- settings: argument > check_options > default -------------------------------------------


def _settings(pipeline, target_accuracy, tolerance) -> tuple[float | None, float]:
    """The target (None: automatic) and the tolerance, validated before anything trains."""
    options = dict(pipeline.check_options.get(NAME, {}))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"Pipeline {pipeline.name!r}: check_options['overfit'] sets {', '.join(unknown)}, which check_overfit "
            f"does not take; it takes {', '.join(OPTIONS)}; received: check_options['overfit']={options!r}"
        )
    target = _setting(pipeline, "target_accuracy", target_accuracy, options, _checked_target)
    tolerance = _setting(pipeline, "tolerance", tolerance, options, _checked_tolerance)
    return target, DEFAULT_TOLERANCE if tolerance is None else tolerance


def _setting(pipeline, name: str, given, options: dict, checked):
    if given is not None:
        return checked(given)
    if name not in options:
        return None
    try:
        return checked(options[name])
    except ValueError as error:  # name where the value came from
        raise ValueError(f"Pipeline {pipeline.name!r}: check_options['overfit']: {error}") from None


def _checked_target(value) -> float:
    return check_number("target_accuracy", value, "a number in (0, 1]", 0, 1, low_open=True, high_open=False)


def _checked_tolerance(value) -> float:
    return check_number("tolerance", value, "a number in [0, 1)", 0, 1)


# --- what fit reported, and what trains -------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    """Fit's accuracy and loss by epoch, the loss before the first step, and chance."""

    metric: str
    curve: list
    losses: list
    initial_loss: float
    samples: int
    chance: float  # the majority share: what predicting one class for every image reaches
    stages: tuple = ()  # (label, epochs) of each stage of a run in stages; () for one fit
    custom: bool = False  # a custom loop: one training-mode pass after it stands for fit's numbers

    @property
    def who(self) -> str:
        return "the custom loop" if self.custom else "fit"

    def at(self, epoch: int) -> str:
        """When the target was reached: "at epoch 3 of 10", with the stage where there are several."""
        if self.custom:
            return "by its end"
        where = f"at epoch {epoch} of {len(self.curve)}"
        for index, (label, epochs) in enumerate(self.stages, 1):
            if epoch <= epochs:
                return f"{where} (stage {index} of {len(self.stages)}, {label})"
            epoch -= epochs
        return where

    @property
    def span(self) -> str:
        return "by its end" if self.custom else f"in {len(self.curve)} epochs"

    @property
    def best(self) -> float:
        finite = [v for v in self.curve if math.isfinite(v)]
        return max(finite) if finite else math.nan

    def reached(self, target: float) -> int | None:
        return next((epoch for epoch, value in enumerate(self.curve, 1) if value >= target), None)

    def describe(self) -> str:
        if self.custom:
            return (
                f"{self.metric} of a training-mode pass on the custom loop's final weights: {self.curve[0]:.2f} "
                f"(chance, the majority share: {self.chance:.2f}); loss {self.initial_loss:.3g} before training, "
                f"{self.losses[0]:.3g} after. {NO_FIT_HISTORY}"
            )
        accuracies = ", ".join(f"{v:.2f}" for v in self.curve)
        losses = ", ".join(f"{v:.3g}" for v in self.losses)
        return (
            f"{self.metric} by epoch: {accuracies} (chance, the majority share: {self.chance:.2f}); "
            f"loss {self.initial_loss:.3g} before the first step, then by epoch: {losses}."
            + (
                f" Stages: {', '.join(f'{label} ({epochs} epochs)' for label, epochs in self.stages)}."
                if self.stages
                else ""
            )
        )

    def numbers(self) -> dict:
        return {"best_accuracy": self.best, "epochs": len(self.curve), "chance": self.chance}


def _fit_of(run: TrainingRun, tolerance: float) -> _Fit | None:
    """Fit's curves, over every stage of a run in stages; for a custom loop, which has no fit
    history, a training-mode pass on its final weights (the agreement's train-mode)."""
    _, counts = np.unique(run.raw.labels, return_counts=True)  # any labels, even out of range
    chance = float(counts.max() / counts.sum())
    if run.custom_loop:
        values = agreement_of(run, tolerance).values["train-mode"]
        metric = next((name for name in values if "acc" in name), None)
        if metric is None:
            return None
        loss = float(values.get("loss", math.nan))
        return _Fit(metric, [float(values[metric])], [loss], float(run.initial_loss), len(run.raw), chance, custom=True)
    history = run.history.history
    metric = next((name for name in history if not name.startswith("val_") and "acc" in name), None)
    if metric is None:
        return None
    stages = [stage for stage in stages_of(run) if stage.history is not None]
    if len(stages) <= 1:
        curve, losses, labels = history[metric], history.get("loss", []), ()
    else:
        logs = [stage.history.history for stage in stages]
        sizes = [max((len(v) for v in log.values()), default=0) for log in logs]
        curve = [v for log, size in zip(logs, sizes) for v in log.get(metric, [math.nan] * size)]
        losses = [v for log, size in zip(logs, sizes) for v in log.get("loss", [math.nan] * size)]
        labels = tuple((stage.label, size) for stage, size in zip(stages, sizes))
    return _Fit(
        metric,
        [float(v) for v in curve],
        [float(v) for v in losses],
        float(run.initial_loss),
        len(run.raw),
        chance,
        labels,
    )


@dataclass(frozen=True)
class _Capacity:
    """How much of the model trains (parameters), and how far fit moved the trained weights."""

    trained: int
    frozen: int
    indices: tuple  # of the trained weights in run.weights
    moved: int  # trained weights that changed at all
    step: float  # how far they moved together, relative to their size at initialization
    frozen_layers: tuple

    @property
    def weights(self) -> int:
        return len(self.indices)

    @property
    def share(self) -> float:
        total = self.trained + self.frozen
        return self.trained / total if total else 0.0

    def describe(self) -> str:
        text = f"{self.share:.1%} of the model's weights train ({self.trained:,} of {self.trained + self.frozen:,} parameters)"
        return f"{text}; frozen: {listed(self.frozen_layers)}" if self.frozen_layers else text


def _capacity_of(run: TrainingRun) -> _Capacity:
    roles = variable_roles(run)
    trained = [r for r in roles if r.kind == TRAINED]
    frozen = [r for r in roles if r.kind == FROZEN]
    with np.errstate(all="ignore"):
        moved = sum(_squared(run.final[r.index] - run.initial[r.index]) for r in trained)
        size = sum(_squared(run.initial[r.index]) for r in trained)
    return _Capacity(
        trained=sum(run.initial[r.index].size for r in trained),
        frozen=sum(run.initial[r.index].size for r in frozen),
        indices=tuple(r.index for r in trained),
        moved=sum(change(r, run.initial, run.final) != 0.0 for r in trained),
        step=math.sqrt(moved / size) if size > 0 else math.inf,
        frozen_layers=tuple(dict.fromkeys(r.layer.split("/")[0] for r in frozen)),
    )


def _squared(values: np.ndarray) -> float:
    return float(np.sum(np.square(values, dtype=np.float64)))


@dataclass(frozen=True)
class _Goal:
    """A target accuracy for fit, or None: the trainable part must learn, not memorize."""

    target: float | None
    reason: str


def _goal_of(target: float | None, capacity: _Capacity) -> _Goal:
    if target is not None:
        return _Goal(target, f"Target {target:g} as given")
    if capacity.share >= MEMORIZING_SHARE:
        why = "a model that trains most of its weights memorizes a dozen images"
        return _Goal(DEFAULT_TARGET, f"Target 1 because {capacity.describe()}: {why}")
    return _Goal(None, f"No target: only {capacity.describe()}, so the trainable part must learn, not memorize")


# --- the judgements ---------------------------------------------------------------------------


def _reached_with_training_only_layers_held(run, fit: _Fit, goal: _Goal, tolerance: float) -> str:
    """Fit's running accuracy counts with dropout, noise and augmentation active: where the final
    weights reach the target in a training pass with those held (the agreement's train-mode),
    the model learned the images. Returns what to say, or "" where it did not."""
    if goal.target is None:
        return ""
    agreement = agreement_of(run, tolerance)
    if not agreement.training_only_layers:
        return ""
    learned = agreement.values["train-mode"].get(fit.metric, agreement.values["train-mode"].get("accuracy"))
    if learned is None or learned < goal.target:
        return ""
    return (
        f"Fit's running {fit.metric} peaked at {fit.best:.4f} with {listed(agreement.training_only_layers)} active; "
        f"with them held in inference mode, a training pass on the final weights reaches {learned:.4f}."
    )


def _judge_inference(
    run, fit: _Fit, goal: _Goal, capacity: _Capacity, reached: int, tolerance: float, note: str = ""
) -> CheckResult:
    """Fit reached the target: evaluate after recalibration must keep it, but for one sample."""
    reference = goal.target if goal.target is not None else DEFAULT_TARGET
    agreement = agreement_of(run, tolerance)
    inference = agreement.values.get("recalibrated", agreement.values["evaluate"])
    evaluated = inference.get(fit.metric, inference.get("accuracy"))
    numbers = {
        "reached_at_epoch": reached,
        "fit_accuracy": fit.curve[-1],
        "recalibrated_accuracy": evaluated,
        "target": reference,
        "trainable_share": capacity.share,
        **fit.numbers(),
    }
    shortfall = math.nan if evaluated is None else reference - evaluated
    reason = (
        goal.reason
        if goal.target is not None
        else f"{goal.reason}; it memorized all the same, which evaluate must keep"
    )
    if shortfall > 0 and significant(shortfall, fit.samples, tolerance):
        return failed(
            NAME,
            run.pipeline,
            f"{fit.who} reached {fit.metric} {reference:g} {fit.at(reached)}, but evaluate after BatchNorm "
            f"recalibration gives {evaluated:.4f} on the same images ({round(shortfall * fit.samples)} of {fit.samples} samples)",
            f"{agreement}\n  The gap survives recalibration, so stale BN statistics do not explain it: "
            "look at the diagnosis above (preprocessing or training-only layers).",
            **numbers,
        )
    return passed(
        NAME,
        run.pipeline,
        f"{fit.who} reached {fit.metric} {reference:g} {fit.at(reached)}; "
        f"evaluate after recalibration {'reports no accuracy' if evaluated is None else f'{evaluated:.4f}'}",
        f"{fit.describe()}\n{reason}." + (f"\n{note}" if note else ""),
        **numbers,
    )


def _short_of_target(run, fit: _Fit, goal: _Goal, capacity: _Capacity, signals: _Signals) -> CheckResult:
    cause = _cannot_learn(run, capacity, signals) or _stalled(run, capacity)
    diagnosis = (
        f"  Cause: {cause.detail}.\n  Fix: {cause.fix}"
        if cause
        else "  Likely causes: labels that do not match the images or the loss, a frozen or disconnected model, "
        "a learning rate far too high (diverges) or too low (stalls), inputs scaled far off.\n"
        "  Fix: run the labels, numerics and variables_change checks; then tune the learning rate or epochs."
    )
    return failed(
        NAME,
        run.pipeline,
        f"{fit.who} reached {fit.best:.4f} {fit.metric} at best, below the target {goal.target:g}, {fit.span}"
        + (f": {cause.summary}" if cause else ""),
        f"{fit.describe()}\n{goal.reason}.\n{diagnosis}\n"
        f"  If the trainable part truly cannot reach {goal.target:g}, state what it reaches: {FIX_OPTION}.",
        target=goal.target,
        trainable_share=capacity.share,
        **fit.numbers(),
    )


def _judge_learning(run, fit: _Fit, goal: _Goal, capacity: _Capacity, signals: _Signals) -> CheckResult:
    """A head on a frozen base that did not memorize: it must show that it learns."""
    numbers = {"target": None, "trainable_share": capacity.share, **fit.numbers()}
    cause = _cannot_learn(run, capacity, signals)
    if cause is not None:
        return failed(
            NAME,
            run.pipeline,
            f"the trainable part does not learn: {cause.summary}",
            f"{fit.describe()}\n{goal.reason}.\n  Cause: {cause.detail}.\n  Fix: {cause.fix}",
            **numbers,
        )
    before, after = signals.losses
    return passed(
        NAME,
        run.pipeline,
        f"the trainable part learns: loss {before:.4g} before fit, {after:.4g} after (inference mode), "
        f"{fit.metric} {fit.best:.2f} at best (chance {fit.chance:.2f}); 1.0 not demanded, {capacity.share:.1%} of the weights train",
        f"{fit.describe()}\n{goal.reason}.\n  To demand a level anyway: {FIX_OPTION}.",
        loss_before=before,
        loss_after=after,
        **numbers,
    )


def _judge_blind(run, fit: _Fit, capacity: _Capacity, signals: _Signals, tolerance: float) -> CheckResult:
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
    why = (
        f"{fit.describe()}\nNo trainable layer can tell the images apart, so fit can reach the majority share "
        f"{fit.chance:.2f} at most. A frozen base with random weights (weights=None: CI downloads nothing) and "
        "BatchNormalization statistics still at 0 and 1 shrinks its features this way."
    )
    if significant(fit.chance - fit.best, fit.samples, tolerance) and fit.best < fit.chance:
        return failed(
            NAME,
            run.pipeline,
            f"{fit.who} reached {fit.best:.4f} {fit.metric} at best, below the majority share {fit.chance:.2f} that a model "
            f"blind to the images reaches: {seen}",
            f"{why}\n  The head does not even learn the class prior: check the labels and the learning rate.",
            **numbers,
        )
    return passed(
        NAME,
        run.pipeline,
        f"memorization not judged: {seen}; {fit.who} reached {fit.metric} {fit.best:.2f}, the majority share {fit.chance:.2f}",
        f"{why}\n  To judge memorization, load the base's pretrained weights, or state a target: {FIX_OPTION}.",
        **numbers,
    )


# --- why a trainable part cannot learn ----------------------------------------------------------


class _Signals:
    """How far apart the images are at the model's inputs, at what its trainable layers
    receive, and at its outputs; the loss before and after fit. Each measured once, on demand."""

    def __init__(self, run: TrainingRun, capacity: _Capacity):
        self.run, self.capacity = run, capacity

    @functools.cached_property
    def inputs(self) -> float:
        return _spread(self.run.x_infer)

    @functools.cached_property
    def received(self) -> float | None:
        """The largest spread in what the outermost layers holding trained weights receive;
        None where the model is no graph of layers to probe (a subclassed model)."""
        if not self.capacity.frozen:
            return self.inputs  # nothing frozen: the first trained layers receive the inputs
        values = _trainable_inputs(self.run)
        return None if not values else _largest([_spread(v) for v in values])

    @functools.cached_property
    def outputs(self) -> float:
        outputs = _in_batches(
            lambda x: forward(self.run.model, x, training=False), self.run.x_infer, self.run.pipeline.batch_size
        )
        return _largest([_spread(o) for o in outputs]) if isinstance(outputs, list) else _spread(outputs)

    @functools.cached_property
    def losses(self) -> tuple[float, float]:
        return _loss_before_and_after(self.run, self.capacity)

    @property
    def blind(self) -> bool:
        """The frozen part erased the images: the inputs differ, what the trainable layers receive does not."""
        return self.inputs > NO_SPREAD and self.received is not None and self.received <= NO_SPREAD


@dataclass(frozen=True)
class _Cause:
    summary: str
    detail: str
    fix: str


def _cannot_learn(run: TrainingRun, capacity: _Capacity, signals: _Signals) -> _Cause | None:
    """The mechanism that keeps the trainable part from learning, when one shows; else None."""
    if not capacity.moved:
        rate = current_learning_rate(run.model)
        return _Cause(
            f"none of the {capacity.weights} trainable weights moved {_steps(run, '')}",
            f"none of the {capacity.weights} trainable weights moved {_steps(run)} (learning rate "
            f"{'unknown' if rate is None else f'{rate:g}'}): a learning rate of 0, or no gradient reaches them "
            "(stop_gradient, a non-differentiable op before the output)",
            "set a learning rate above 0 (e.g. 1e-3 for Adam); see check_variables_change for the weights.",
        )
    received = signals.received
    if signals.outputs <= NO_SPREAD and received is not None and received > CLEARLY_DIFFERENT:
        return _Cause(
            f"the model gives all {len(run.x_infer)} images the same output",
            f"after fit the model gives all {len(run.x_infer)} images the same output (they differ by at most "
            f"{signals.outputs:.2g}), while its trainable layers receive values that differ by up to {received:.3g}: "
            "dead units (ReLUs that no image activates), a saturated activation or a zero scale inside the trainable part",
            "look for ReLU layers with large negative biases, or a learning rate so high that it killed them; "
            "lower it, or use another initializer.",
        )
    before, after = signals.losses
    if not math.isfinite(after):
        return _Cause(
            f"the loss is {after:.4g} after fit",
            f"the loss on the training images in inference mode is {after:.4g} after fit: training went non-finite",
            "run check_numerics: it names what went non-finite first, and why.",
        )
    if after - before > ROSE * abs(before):  # abs: some losses are negative (cosine similarity)
        return _Cause(
            f"the loss rose from {before:.4g} to {after:.4g}",
            f"the loss on the training images (inference mode, so no dropout noise) rose from {before:.4g} with the "
            f"trained weights as fit found them to {after:.4g} {_steps(run, '').replace('in ', 'after ', 1)}: fit moves the weights, but not "
            "downhill (a learning rate far too high, or a loss that does not measure the error)",
            "lower the learning rate (e.g. 1e-3 for Adam); check that the loss falls as predictions improve.",
        )
    return None


def _steps(run: TrainingRun, of: str = " of fit") -> str:
    """How long training ran, for messages: "in 12 steps of fit", or "in the custom loop"."""
    return "in the custom loop" if run.custom_loop else f"in {len(run.batch_losses)} steps{of}"


def _stalled(run: TrainingRun, capacity: _Capacity) -> _Cause | None:
    """Steps too small to fit in the epochs: a diagnosis for a model short of its target, never a
    failure by itself (a head on poor frozen features moves little and is still correct)."""
    if not capacity.step < STALLED:
        return None
    rate = current_learning_rate(run.model)
    return _Cause(
        f"the trainable weights moved by {capacity.step:.2%} of their size",
        f"{_steps(run, '')} the trainable weights moved by {capacity.step:.2%} of their size at "
        f"initialization (learning rate {'unknown' if rate is None else f'{rate:g}'}): steps far too small to fit "
        "in these epochs",
        "raise the learning rate (e.g. 1e-3 for Adam, 1e-2 for SGD) or train for more epochs.",
    )


def _loss_before_and_after(run: TrainingRun, capacity: _Capacity) -> tuple[float, float]:
    """The compiled loss in inference mode (deterministic: no dropout, no batch statistics) with
    the trained weights as fit found them, and as it left them; the model is restored after.

    Only the trained weights go back: statistics stay as they are now (recalibrated by
    `after_fit`, say), so the two losses differ by what training the weights did."""
    trained = [run.weights[index] for index in capacity.indices]
    after = _inference_loss(run)
    now = VariableSnapshot.of(trained)
    try:
        for variable, index in zip(trained, capacity.indices):
            variable.assign(run.initial[index])
        before = _inference_loss(run)
    finally:
        now.restore()
    return before, after


def _inference_loss(run: TrainingRun) -> float:
    outputs = _in_batches(lambda x: forward(run.model, x, training=False), run.x_infer, run.pipeline.batch_size)
    return compat.compute_loss(run.model, run.x_infer, run.y_train, outputs)


def _trainable_inputs(run: TrainingRun) -> list | None:
    """What the model's outermost layers that hold trained weights receive, in inference mode;
    None where that cannot be probed."""
    keras = compat.keras()
    model = run.model
    layers = [layer for layer in compat.sublayers(model) if any(id(v) in run.trainable for v in layer.weights)]
    try:
        tensors = [layer.input for layer in layers]
        if len(model.inputs) != 1 or any(isinstance(t, (list, tuple, dict)) for t in tensors):
            return None
        probe = keras.Model(model.inputs[0], tensors)
        outputs = _in_batches(lambda x: probe(x, training=False), run.x_infer, run.pipeline.batch_size)
    except Exception:  # no functional graph: a subclassed model, a layer called twice, a nested mixed model
        return None
    return outputs if isinstance(outputs, list) else [outputs]


def _in_batches(call, x: np.ndarray, batch_size: int):
    """`call` on `x` batch by batch, as NumPy: one array, or a list where `call` returns several."""
    parts = [call(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
    if isinstance(parts[0], (list, tuple)):
        return [np.concatenate([compat.to_numpy(p[i]) for p in parts]) for i in range(len(parts[0]))]
    return np.concatenate([compat.to_numpy(p) for p in parts])


def _spread(values: np.ndarray) -> float:
    """The largest difference between two samples in any one value; NaN where some are not finite."""
    flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if not np.isfinite(flat).all():
        return math.nan
    return float(np.ptp(flat, axis=0).max()) if flat.size else 0.0


def _largest(spreads: list) -> float:
    return math.nan if any(math.isnan(s) for s in spreads) else max(spreads)
