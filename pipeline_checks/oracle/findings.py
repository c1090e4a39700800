"""From the five modes' numbers to findings: which gaps are open, their likely cause, the fix.

Gaps that fail are `Finding`s with failure=True; causes and notes beside them do not fail.
"""

from __future__ import annotations

import math

from pipeline_checks._text import listed
from pipeline_checks.results.verdict import Finding

# A gap on an accuracy-like metric counts only when at least this many samples changed: in a
# correct pipeline one sample near the decision boundary can flip between batch and population
# BatchNorm statistics, or between fit's last weights and its epoch average.
MIN_SAMPLES = 2


def significant(gap: float, samples: int, tolerance: float) -> bool:
    """Whether an accuracy-like gap (a fraction of `samples`) exceeds `tolerance` and amounts
    to at least `MIN_SAMPLES` samples."""
    return abs(gap) > tolerance and round(abs(gap) * samples) >= MIN_SAMPLES


def findings_of(
    values,
    gated,
    tolerance,
    predict_tolerance,
    samples,
    batchnorm,
    training_only,
    recalibration,
    saturated=False,
    non_finite_variables=(),
    logits_beneath=None,
    counts=None,
    scales=None,
    examples="images",
) -> list[Finding]:
    """What the modes' `values` show: the failing gaps, then the causes that explain them.

    Args:
        values: mode -> metric -> value, as `measure_agreement` measured them.
        gated: the metrics whose gaps count.
        tolerance: allowed absolute gap on a gated metric (relative on the loss).
        predict_tolerance: allowed relative gap between predict and evaluate.
        samples: how many samples the modes saw (a gap on a fraction must be `MIN_SAMPLES` of them).
        batchnorm: the model's `BatchNormFacts`.
        training_only: paths of the layers held in inference mode in train-mode.
        recalibration: the `Recalibration` measured, or None.
        saturated: whether predicted probabilities reach 0, where predict's loss is only a lower bound.
        non_finite_variables: paths of model variables that hold NaN or Inf.
        logits_beneath: the `LogitsBeneath` misfit of the loss and the head, or None where the loss fits it.
        counts: the gated metrics that count samples (FalseNegatives, TruePositives...), judged as the
            share of the samples a gap moves: name -> whether more is better (False for false positives).
        scales: on a regression (None otherwise), metric -> its `ValueScale`: the gap is divided by its
            unit (the targets' std or variance) before it meets the tolerance, and is worse in its
            direction; a metric without one keeps a relative gap, worse above.
        examples: what the inputs are, for messages ("images", "examples").

    Returns:
        The findings in reading order; the gaps fail, causes and notes do not.
    """
    findings = _non_finite(values, non_finite_variables)
    findings += _predict_gaps(values, predict_tolerance, saturated, logits_beneath)
    regression, scales = scales is not None, scales or {}
    # On a regression a training-mode pass normalizes with a few examples' statistics, noisier than the
    # population's: inference doing better than it is what precise BatchNorm gives, and is noted.
    inference_gaps = _gaps(
        values,
        "evaluate",
        "train-mode",
        gated,
        tolerance,
        samples,
        fail_above=not regression,
        counts=counts,
        scales=scales if regression else None,
    )
    inference_gap = [gap for gap in inference_gaps if gap.failure]
    fit_gaps = _gaps(
        values,
        "evaluate",
        "fit",
        gated,
        tolerance,
        samples,
        fail_above=False,
        counts=counts,
        scales=scales if regression else None,
    )
    fit_gap = [gap for gap in fit_gaps if gap.failure]
    findings += inference_gap + fit_gap
    if not (inference_gap or fit_gap):
        better = [gap for gap in inference_gaps if not gap.failure]
        return findings + _above_fit_note(fit_gaps, values, gated, training_only, regression) + better
    closes = "recalibrated" in values and all(
        abs(values["recalibrated"][m] - values["train-mode"][m]) <= tolerance * _unit(scales, m)
        for m in gated
        if m in values["recalibrated"] and m in values["train-mode"]
    )
    if batchnorm.frozen_moved_in_training:
        findings.append(_frozen_batchnorm_in_training(batchnorm))
    stale = bool(inference_gap and closes and batchnorm.count)
    # Per-replica statistics change what fit saw; a gap that recalibration closes is stale statistics,
    # on several replicas as on one (MirroredStrategy's stale-batchnorm row was blamed on replicas before).
    if batchnorm.replicas > 1 and batchnorm.unsynchronized and not stale:
        return findings + [_per_replica_batchnorm(batchnorm, examples)]
    if stale:
        findings.append(_stale_batchnorm(batchnorm, recalibration))
    elif inference_gap and not batchnorm.frozen_moved_in_training:
        findings.append(_cause_unknown(batchnorm, training_only))
    if fit_gap and not inference_gap:
        findings.append(
            Finding(
                "Cause: fit saw other inputs, or the weights moved during the epoch",
                "evaluate agrees with a training-mode pass on this data, but is below what fit reported.",
                "give fit and evaluate the same preprocessing (augmentation, rescaling, "
                f"{'target scaling' if regression else 'label encoding'}); "
                "fit's numbers are an average over the last epoch, so compare near convergence.",
                failure=False,
            )
        )
    return findings


def _per_replica_batchnorm(batchnorm, examples="images") -> Finding:
    """Gaps under a distribution strategy whose BatchNormalization layers normalize per replica."""
    share = ""
    if batchnorm.batch_size:
        each = batchnorm.batch_size / batchnorm.replicas
        noun = examples if each != 1 else examples.removesuffix("s")
        share = f" of {each:g} {noun} (a global batch of {batchnorm.batch_size})"
    layers = len(batchnorm.unsynchronized)
    return Finding(
        "Cause: per-replica BatchNormalization statistics",
        f"fit ran on {batchnorm.replicas} replicas, and {layers} BatchNormalization layer{'s' if layers != 1 else ''} "
        f"({listed(batchnorm.unsynchronized)}) normalized each replica's share{share} with its own statistics, "
        "so the weights learned to fit those; a training-mode pass over the whole batch, and the moving "
        "statistics evaluate uses, normalize otherwise.",
        "BatchNormalization(synchronized=True), which computes the statistics over the global batch across "
        f"replicas; or a per-replica batch large enough for stable statistics (e.g. 16 or more {examples}).",
        failure=False,
    )


def _cause_unknown(batchnorm, training_only) -> Finding:
    """An inference gap nothing known explains, naming only the mechanisms the model has."""
    ruled_out = ["BatchNormalization recalibration"] if batchnorm.count else []
    if training_only:
        ruled_out.append(f"the training-only layers ({listed(training_only)} held in inference mode in both)")
    if len(ruled_out) == 2:
        explained = f", and neither {ruled_out[0]} nor {ruled_out[1]} explains it"
    else:
        explained = "".join(f", and {ruled} does not explain it" for ruled in ruled_out)
    return Finding(
        "Cause unknown",
        f"inference differs from a training-mode pass with the same weights{explained}.",
        "look for layers whose call() branches on `training`, or custom train_step logic.",
        failure=False,
    )


def _above_fit_note(above, values, gated, training_only, regression=False) -> list[Finding]:
    """Evaluate above fit's epoch average (on a regression: better than it, a lower error or a higher
    R²): no bug; say which mechanisms make fit's numbers lower."""
    if not above:
        return []
    reasons = [
        " ".join(gap.summary.removeprefix(_gap("evaluate", "fit")).rstrip(".") for gap in above),
        "fit averages its last epoch while the weights still improve",
    ]
    if training_only:
        active = values.get("train-all", {})
        shown = ", ".join(f"{m} {active[m]:.4f}" for m in gated if m in active)
        reasons.append(
            f"training-only layers ({listed(training_only)}) are active in fit"
            + (f" (a training pass with them active gives {shown})" if shown else "")
        )
    better = "does better than" if regression else "is above"
    title = f"Note: evaluate {better} fit's epoch average"
    return [Finding(title, "; ".join(reasons) + ": not a bug.", failure=False)]


def _non_finite(values, variables) -> list[Finding]:
    # A NaN compares as no gap at all: name it, or a diverged model would agree with itself.
    bad = [
        f"{mode} {metric} is {value}"
        for mode, metrics in values.items()
        for metric, value in metrics.items()
        if not math.isfinite(value)
    ]
    # Inference can hide a NaN in the weights (a max or ReLU that drops it), so name those too.
    if variables:
        bad.append(f"model variables hold NaN or Inf: {listed(variables)}")
    if not bad:
        return []
    return [
        Finding(
            f"Not finite: {'; '.join(bad)}: the modes cannot be compared.",
            fix="the model diverged or its inputs hold NaN/Inf: run pipeline_checks.checks.check_numerics "
            "on the pipeline to find the first non-finite loss, weight or gradient.",
        )
    ]


def _predict_gaps(values, predict_tolerance, saturated: bool, logits_beneath=None) -> list[Finding]:
    gaps = {}
    for metric, evaluated in values["evaluate"].items():
        predicted = values["predict"].get(metric)
        if metric == "loss" and saturated and predicted is not None and predicted < evaluated:
            continue  # a loss from clipped probabilities is only a lower bound of evaluate's
        if predicted is not None and abs(predicted - evaluated) > predict_tolerance * max(1.0, abs(evaluated)):
            gaps[metric] = (
                f"Gap: predict vs evaluate: {metric} is {predicted:.4f} from predict outputs but "
                f"{evaluated:.4f} from evaluate."
            )
    if logits_beneath is not None and list(gaps) == ["loss"]:
        # The loss alone differs, and Keras is known to compute it from the head's logits.
        metrics = [m for m in values["evaluate"] if m != "loss"]
        return [_loss_from_logits_beneath(gaps["loss"], logits_beneath, metrics)]
    return [
        Finding(
            summary,
            cause="a data pipeline that differs between predict and evaluate, stateful layers, or "
            "non-deterministic inference: both run inference on the same data, so they must agree",
            fix="give predict and evaluate the same inputs, and keep inference deterministic (no layer "
            "that draws random numbers or keeps state between calls at inference).",
        )
        for summary in gaps.values()
    ]


def _loss_from_logits_beneath(summary: str, beneath, metrics) -> Finding:
    verb = "agrees" if len(metrics) == 1 else "agree"
    agree = f"; {listed(metrics)}, read from the outputs, {verb}" if metrics else ""
    return Finding(
        summary,
        cause=f"the loss does not fit the head: {beneath.misfit}. Keras on TensorFlow computes a cross-entropy "
        f"from the logits beneath a sigmoid or softmax output, so fit and evaluate score {beneath.scored}{agree}",
        fix=f"{beneath.fitting_loss}; pipeline_checks.checks.check_labels names the loss and head that disagree.",
    )


def _unit(scales, metric) -> float:
    """What a gap on `metric` is divided by before it meets the tolerance: 1 but on a regression's scaled metric."""
    scale = scales.get(metric)
    return 1.0 if scale is None else scale.unit


def _gaps(
    values, mode, reference, gated, tolerance, samples, fail_above=True, counts=None, scales=None
) -> list[Finding]:
    """`mode` against `reference` on each gated metric; a gap in the better direction fails only with `fail_above`.

    A gap on an accuracy-like metric (a fraction) or on one of `counts` (a count of samples, as
    keras.metrics.FalseNegatives counts) fails only where it amounts to `MIN_SAMPLES` samples. A
    regression's metric (`scales` not None) is judged in its unit: the gap divided by it."""
    if reference not in values:
        return []
    regression, counts, scales = scales is not None, counts or {}, scales or {}
    gaps = []
    for metric in gated:
        ours, theirs = values[mode].get(metric), values[reference].get(metric)
        if ours is None or theirs is None:
            continue
        gap = ours - theirs
        if regression:
            found = _scaled_gap(mode, reference, metric, ours, theirs, tolerance, scales.get(metric), fail_above)
            gaps += [found] if found else []
            continue
        counted = metric in counts
        fraction = not counted and metric != "loss" and 0 <= theirs <= 1 and 0 <= ours <= 1
        if fraction or counted:
            beyond = significant(gap / samples if counted else gap, samples, tolerance)
        else:
            beyond = abs(gap) > (tolerance if metric != "loss" else tolerance * max(abs(ours), abs(theirs), 1e-3))
        if beyond:
            moved = round(abs(gap)) if counted else round(abs(gap) * samples)
            images = f" ({moved} of {samples} samples)" if fraction or counted else ""
            # A higher loss (or count of false positives or negatives) is worse: "above" the reference fails.
            worse = gap > 0 if metric == "loss" or counts.get(metric) is False else gap < 0
            direction = "below" if gap < 0 else "above"
            gaps.append(
                Finding(
                    f"{_gap(mode, reference)}{metric} {ours:.4f} is {abs(gap):.4f} {direction} "
                    f"{reference}'s {theirs:.4f}{images}.",
                    failure=worse or fail_above,
                )
            )
    return gaps


def _scaled_gap(mode, reference, metric, ours, theirs, tolerance, scale, fail_above) -> Finding | None:
    """A regression's gap: in the metric's unit (the targets' std or variance), or relative where its
    unit is not known (msle, Huber...); None within the tolerance."""
    gap = ours - theirs
    if scale is None:
        beyond = abs(gap) > tolerance * max(abs(ours), abs(theirs), 1e-3)
        worse, share = gap > 0, ""
    else:
        unit, of = scale.unit_at(theirs)
        beyond = abs(gap) / unit > tolerance
        worse = gap < 0 if scale.higher_is_better else gap > 0
        share = f" ({abs(gap) / unit:.3g} of {of})" if of else ""
    if not beyond:
        return None
    direction = "below" if gap < 0 else "above"
    return Finding(
        f"{_gap(mode, reference)}{metric} {ours:.4f} is {abs(gap):.4f} {direction} {reference}'s {theirs:.4f}{share}.",
        failure=worse or fail_above,
    )


def _gap(mode: str, reference: str) -> str:
    """How a gap's summary begins; the rest says on which metric, by how much and in how many samples."""
    return f"Gap: {mode} vs {reference}: "


def _stale_batchnorm(batchnorm, recalibration) -> Finding:
    momentum = max(batchnorm.momenta)
    parts = [f"{batchnorm.count} BatchNormalization layers, momentum {', '.join(f'{m:g}' for m in batchnorm.momenta)}"]
    if batchnorm.updates_seen is not None:
        remains = momentum**batchnorm.updates_seen
        parts.append(
            f"{batchnorm.updates_seen} updates seen, so {remains:.0%} of the initial moving mean 0 / variance 1 remains"
        )
    if 0 < momentum < 1:
        parts.append(f"forgetting 99% takes {math.ceil(math.log(0.01) / math.log(momentum))} updates")
    detail = "; ".join(parts) + ". Recalibrating them from the data closes the gap."
    if recalibration is not None and recalibration.layers:
        worst = ", ".join(f"{c.path} ({c.drift:.3g})" for c in recalibration.largest_drift())
        detail += f" Largest drift between moving and data statistics: {worst}."
    return Finding(
        "Cause: stale BatchNormalization moving statistics",
        detail,
        "recalibrate with pipeline_checks.recalibrate_batchnorm(model, data) after training "
        "(with fit's batch size); or lower BN momentum (e.g. 0.9); or train longer.",
        failure=False,
    )


def _frozen_batchnorm_in_training(batchnorm) -> Finding:
    return Finding(
        "Cause: frozen BatchNormalization runs in training mode",
        f"{len(batchnorm.frozen_moved_in_training)} BN layers with trainable=False changed their moving "
        f"statistics in a training-mode pass ({listed(batchnorm.frozen_moved_in_training)}), so fit "
        "normalizes with batch statistics that inference never uses.",
        "call the frozen base with training=False (x = base(inputs, training=False)) and use "
        "keras.layers.BatchNormalization, not tf.compat.v1's.",
        failure=False,
    )
