"""Check: no NaN or Inf in the inputs, the targets, the loss, the gradients or the weights of a training run."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.checks.family import INITIAL_LOSS, SHARED_RUN, family
from pipeline_checks.model import compat
from pipeline_checks.model.initial_gradients import first_step_shows_gradients, initial_gradients
from pipeline_checks.model.output_models import per_output
from pipeline_checks.pipelines.input_kind import examples_word
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import Finding, verdict
from pipeline_checks.run.training import TrainingRun, shared_run
from pipeline_checks.run.variables import current_learning_rate

NAME = "numerics"
# Finite but exploded: a trainable weight this many times larger than at initialization (at
# least 1), or a last epoch's loss this many times the initial one (docs/checks.md has the
# figures behind them).
EXPLODED_GROWTH = 1e4
NO_BATCH_LOSSES = (
    "fit's per-batch losses do not exist for a custom loop: the loss was checked at initialization, "
    "the weights at its end"
)
RISEN_LOSS_FACTOR = 3.0


@dataclass(frozen=True)
class Seen:
    """A quantity seen non-finite (or exploded), where and when; the first seen fails the check."""

    quantity: str  # "inputs", "targets", "loss", "gradients", "weights"
    where: str  # e.g. "at batch 1 of epoch 2 (step 4)"
    detail: str
    time: float  # steps taken when it was seen: orders what was seen
    what: str = "went non-finite"


@family(NAME, SHARED_RUN, INITIAL_LOSS)
def check_numerics(pipeline, seed: int = 0) -> CheckResult:
    """Fail when the inputs, the targets, the loss, the gradients or the weights hold NaN or Inf, or explode.

    Looks at the shared training run: the training inputs and float targets (a regression's
    values, soft labels), the loss at initialization and
    after every batch, the weights (statistics included) after the first step, after the
    first epoch and at the end; and at the gradients of the compiled loss on one training
    batch at the initial weights. Where they first go non-finite tells the cause apart:
    already at initialization (log or division by zero in the loss, bad inputs), or after
    finite steps with a growing loss (a learning rate far too high). Where everything stays
    finite, it still fails when a trainable weight grows over `EXPLODED_GROWTH`-fold or the
    last epoch's loss ends over `RISEN_LOSS_FACTOR` times the initial one: the same
    divergence, on a backend whose numbers do not overflow.

    After a custom loop (a pipeline's own `train` function that calls no fit) there are no
    per-batch losses: the summary says so, and the rest is checked.

    The gradients are computed where they can tell something: when anything above went
    wrong, or when the weights after fit's first step do not already prove them finite (a
    custom loop or `train_step`, `clipvalue`, a loss-scale optimizer). A Keras optimizer's
    update carries a NaN or Inf gradient into its weight, so a finite first step of Keras'
    own `train_step` means finite gradients; the details say which way they were checked.
    Gradients are computed on the TensorFlow, JAX and PyTorch backends; on another, the
    details say that they were skipped.

    Args:
        pipeline: a `Pipeline`.
        seed: the seed of the shared training run.

    Returns:
        A `CheckResult`; its details say which quantity went non-finite first, where, the
        first variable affected, the likely cause and the fix.

    Example:
        >>> check_numerics(pipeline).raise_if_failed()
    """
    run = shared_run(pipeline, seed)
    gradients, skipped = None, ""
    seen = _seen(run, None)
    shown_by_first_step = "" if run.custom_loop else first_step_shows_gradients(run.model, run.after_first_step)
    if seen or not shown_by_first_step:
        gradients, skipped = initial_gradients(
            run.model, run.weights, run.initial, run.x_train, run.y_train, run.pipeline.batch_size
        )
        seen = _seen(run, gradients)
    numbers = {
        "initial_loss": run.initial_loss,
        "last_loss": run.batch_losses[-1] if run.batch_losses else math.nan,
        "largest_weight": _largest(run.final),
    }
    if gradients is not None:
        numbers["largest_gradient"] = _largest([g for _, g in gradients if g is not None])
    note = f"Gradients not checked: {skipped}." if skipped else ""
    if not seen:
        values = "inputs, targets, loss, weights" if run.raw.task == "regression" else "inputs, loss, weights"
        checked = values + (" and initial gradients" if gradients is not None or shown_by_first_step else "")
        largest = f"Largest weight at the end {numbers['largest_weight']:.3g}" + (
            f"; largest initial gradient {numbers['largest_gradient']:.3g}." if gradients is not None else "."
        )
        if shown_by_first_step and gradients is None:
            note = f"Initial gradients finite: {shown_by_first_step}."
        over = (
            f"through the custom loop ({NO_BATCH_LOSSES})"
            if run.custom_loop
            else f"over {len(run.batch_losses)} steps of fit"
        )
        return verdict(NAME, pipeline, [], f"{checked} finite {over}", [largest, note], **numbers)
    cause, fix = _cause(run, seen, gradients is not None)
    first, *then = seen
    findings = [Finding(f"{first.quantity} {first.what} first, {first.where}", first.detail, fix, cause)]
    findings += [Finding(f"{s.quantity.capitalize()} {s.where}", s.detail, failure=False) for s in then]
    return verdict(NAME, pipeline, findings, "", note, **numbers)


def _seen(run: TrainingRun, gradients) -> list[Seen]:
    """What went non-finite, in order; where nothing did, what exploded."""
    found = (
        _inputs(run),
        _targets(run),
        _initial_loss(run),
        _gradients(run, gradients),
        _batch_losses(run),
        _weights(run),
    )
    seen = sorted((f for f in found if f), key=lambda f: f.time)
    if not seen:  # non-finite values say more; else look for finite values that exploded
        seen = sorted((f for f in (_exploded_weights(run), _risen_loss(run)) if f), key=lambda f: f.time)
    return seen


def _inputs(run: TrainingRun) -> Seen | None:
    x = np.asarray(run.x_train)
    if not np.issubdtype(x.dtype, np.floating):
        return None
    bad = ~np.isfinite(x)
    if not bad.any():
        return None
    rows, row = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1)), examples_word(x)
    detail = f"{len(rows)} of {len(x)} preprocessed {row}s hold NaN or Inf (first: {row} {rows[0]})"
    return Seen("inputs", "before training", detail, -2)


def _targets(run: TrainingRun) -> Seen | None:
    """Targets fit trains on that hold NaN or Inf: a missing value in a regression's table (or a
    soft label) makes the loss NaN at its first batch, whatever the model. Each output's, for several."""
    for key, targets in per_output(run.y_train):
        y = np.asarray(targets)
        if not np.issubdtype(y.dtype, np.floating):
            continue
        bad = ~np.isfinite(y.reshape(len(y), -1))
        if not bad.any():
            continue
        rows = np.flatnonzero(bad.any(axis=1))
        values = ", ".join(str(v) for v in dict.fromkeys(y.reshape(len(y), -1)[bad].tolist()))
        shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        output = "" if key is None else f"output {key!r}: "
        detail = f"{output}{len(rows)} of {len(y)} targets fit trains on are {values} (rows {shown})"
        return Seen("targets", "before training", detail, -2)
    return None


def _initial_loss(run: TrainingRun) -> Seen | None:
    if math.isfinite(run.initial_loss):
        return None
    return Seen("loss", "at initialization", f"{run.initial_loss} in a training-mode pass before any step", -1)


def _batch_losses(run: TrainingRun) -> Seen | None:
    losses = np.asarray(run.batch_losses, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(losses))
    if not len(bad):
        return None
    step = int(bad[0])
    finite = losses[:step]
    trend = (
        f"; before it the loss went from {finite[0]:.3g} to {finite[-1]:.3g} (largest {finite.max():.3g})"
        if len(finite)
        else ""
    )
    return Seen(
        "loss", _at_step(run, step), f"{losses[step]} reported by fit{trend}", step + 0.5
    )  # before update step + 1


def _weights(run: TrainingRun) -> Seen | None:
    for step, when, values in _snapshots(run):
        bad = [v for v, value in zip(run.weights, values) if not np.isfinite(value).all()]
        if bad:
            names = listed([compat.variable_path(v) for v in bad])
            detail = (
                f"{len(bad)} of {len(run.weights)} variables (weights and statistics) hold NaN or Inf, first {names}"
            )
            return Seen("weights", when, detail, step)
    return None


def _exploded_weights(run: TrainingRun) -> Seen | None:
    trainable = [(i, v) for i, v in enumerate(run.weights) if id(v) in run.trainable]
    start = {i: max(_magnitude(run.initial[i]), 1.0) for i, _ in trainable}
    for step, when, values in _snapshots(run):
        grown = [(v, i) for i, v in trainable if _magnitude(values[i]) > EXPLODED_GROWTH * start[i]]
        if grown:
            shown = listed(
                f"{compat.variable_path(v)} {_magnitude(run.initial[i]):.3g} -> {_magnitude(values[i]):.3g}"
                for v, i in grown
            )
            detail = (
                f"{len(grown)} of {len(trainable)} trainable weights grew over {EXPLODED_GROWTH:g}-fold "
                f"(largest |value| at initialization -> now): {shown}"
            )
            return Seen("weights", when, detail, step, "exploded")
    return None


def _risen_loss(run: TrainingRun) -> Seen | None:
    per_epoch, losses = _steps_per_epoch(run), run.batch_losses
    if not losses or not run.initial_loss > 0:
        return None
    last_epoch = float(np.mean(losses[-per_epoch:]))
    if last_epoch <= RISEN_LOSS_FACTOR * run.initial_loss:
        return None
    detail = (
        f"{last_epoch:.3g} on average over the last epoch, {last_epoch / run.initial_loss:.3g} times "
        f"the {run.initial_loss:.3g} at initialization (largest {max(losses):.3g})"
    )
    return Seen("loss", f"by the end of fit (step {len(losses)})", detail, len(losses), "rose")


def _snapshots(run: TrainingRun) -> list[tuple[int, str, tuple]]:
    """(steps taken, when, weight values) for the run's snapshots after the first step, in order."""
    steps, per_epoch = len(run.batch_losses), _steps_per_epoch(run)
    if run.custom_loop:
        return [(0, "by the end of the custom loop", run.final)] if run.final else []
    snapshots = (
        (1, "after the first step", run.after_first_step),
        (min(per_epoch, steps), f"after the first epoch (step {min(per_epoch, steps)})", run.after_first_epoch),
        (steps, f"by the end of fit (step {steps})", run.final),
    )
    return [snapshot for snapshot in snapshots if snapshot[2]]


def _magnitude(array) -> float:
    return float(np.max(np.abs(array))) if np.size(array) else 0.0


def _gradients(run: TrainingRun, gradients) -> Seen | None:
    if gradients is None:
        return None
    bad = [path for path, g in gradients if g is not None and not np.isfinite(g).all()]
    if not bad:
        return None
    detail = f"{len(bad)} of {len(gradients)} on a training batch hold NaN or Inf, first {listed(bad)}"
    return Seen("gradients", "at initialization", detail, -1)


def _cause(run: TrainingRun, seen: list[Seen], gradients_checked: bool) -> tuple[str, str]:
    quantities = {f.quantity for f in seen}
    initial = seen[0].time < 0
    if "targets" in quantities:
        inputs_too = " (and so do the inputs)" if "inputs" in quantities else ""
        return (
            f"the targets hold NaN or Inf{inputs_too}: missing values in the source table read as NaN (a column "
            "with '?' or empty cells); one NaN target makes the loss of its batch NaN, and every weight after it",
            "drop the rows with missing values before splitting features from targets (dataset.dropna(), as "
            "TensorFlow's regression tutorial does), or fill them; check np.isfinite(targets).all().",
        )
    if "inputs" in quantities and examples_word(run.x_train) != "image":
        return (
            "the preprocessed inputs hold NaN or Inf: missing values in the source table read as NaN (a column "
            "with '?' or empty cells), or a division by zero in preprocessing",
            "drop or fill the rows with missing values (dataset.dropna(), as TensorFlow's regression tutorial "
            "does), add an epsilon to divisors; check np.isfinite(features).all().",
        )
    if "inputs" in quantities:
        return (
            "the preprocessed inputs hold NaN or Inf (a division by zero, e.g. by a per-image std of a blank image, "
            "or NaN in the source data)",
            "make preprocessing finite: add an epsilon to divisors, and check the raw images.",
        )
    if initial:
        return (
            "the loss or its gradient is non-finite before any step: a log(0) or division by zero in the loss "
            "(a hand-written crossentropy without clipping, or loss(y_true, y_pred) arguments swapped), "
            "or a layer that overflows at initialization",
            "use a built-in Keras loss (from_logits=True where the model outputs logits), or clip probabilities "
            "before log: ops.log(ops.clip(y_pred, 1e-7, 1.0)); a custom loss takes (y_true, y_pred) in that order.",
        )
    rate = current_learning_rate(run.model)
    losses = np.asarray(run.batch_losses, dtype=np.float64)
    finite = losses[: np.argmin(np.isfinite(losses))] if not np.isfinite(losses).all() else losses
    exploded = all(f.what != "went non-finite" for f in seen)  # finite values that grew out of range
    diverged = (
        exploded
        or len(finite) > 1
        and (finite.max() > 10 * max(abs(finite[0]), 1e-12) or rate is not None and rate >= 1)
    )
    rate_text = f" (learning rate {rate:g})" if rate is not None else ""
    if diverged:
        first_step = _largest(run.after_first_step or ())
        grown = f" (largest weight {first_step:.3g} after the first step)" if math.isfinite(first_step) else ""
        overflowed = "exploded" if exploded else "overflowed"
        return (
            f"the learning rate is far too high{rate_text}: "
            + ("gradients were finite at initialization, then " if gradients_checked else "")
            + f"the loss grew over finite steps and the weights {overflowed}{grown}",
            "lower the learning rate (e.g. 1e-3 for Adam, 1e-2 for SGD) or clip gradients (optimizer clipnorm=1.0).",
        )
    return (
        f"values saturated as training went on{rate_text}: a log(0) or division by zero once predictions reach "
        "exactly 0 or 1 (a hand-written loss without clipping), or an exp/pow that overflows",
        "clip probabilities before log (ops.clip(y_pred, 1e-7, 1 - 1e-7)) or use a built-in loss with "
        "from_logits=True; TerminateOnNaN stops a run at the first NaN.",
    )


def _steps_per_epoch(run: TrainingRun) -> int:
    steps = run.pipeline.fit_kwargs.get("steps_per_epoch")
    return int(steps) if steps else max(1, math.ceil(len(run.x_train) / run.pipeline.batch_size))


def _at_step(run: TrainingRun, step: int) -> str:
    per_epoch = _steps_per_epoch(run)
    return f"at batch {step % per_epoch + 1} of epoch {step // per_epoch + 1} (step {step + 1})"


def _largest(arrays) -> float:
    values = [_magnitude(a) for a in arrays if np.size(a) and np.isfinite(a).all()]
    return max(values, default=math.nan)
