"""Check: the pipeline can fit its tiny dataset, and inference keeps what fit learned."""

from __future__ import annotations

from pipeline_checks._validation import check_number
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.oracle.agreement import DEFAULT_TOLERANCE
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.run.shared import agreement_of
from pipeline_checks.run.training import shared_run

NAME = "overfit"


def check_overfit(
    pipeline, seed: int = 0, target_accuracy: float = 1.0, tolerance: float = DEFAULT_TOLERANCE
) -> CheckResult:
    """Fail unless fit reaches `target_accuracy` on the tiny data within the pipeline's epochs.

    A pipeline that cannot memorize a dozen images has a bug (wrong labels, a frozen or
    disconnected model, a learning rate far off) long before it meets real data. Then
    `evaluate` after precise BatchNorm recalibration must reach the target too, within
    `tolerance`: what fit learned must survive into inference.

    Args:
        pipeline: a `Pipeline` whose model compiles an accuracy metric.
        seed: the seed of the shared training run.
        target_accuracy: training accuracy fit must report in some epoch, in (0, 1].
        tolerance: how far below the target the recalibrated evaluate may be.

    Returns:
        A `CheckResult` with the epoch the target was reached and the accuracies.

    Example:
        >>> check_overfit(pipeline, target_accuracy=1.0).raise_if_failed()
    """
    pipeline, seed = checked_pipeline(pipeline), checked_seed(seed)
    check_number("target_accuracy", target_accuracy, "a number in (0, 1]", 0, 1, low_open=True, high_open=False)
    run = shared_run(pipeline, seed)
    history = run.history.history
    metric = next((name for name in history if not name.startswith("val_") and "acc" in name), None)
    if metric is None:
        return failed(
            NAME, pipeline, "fit reports no accuracy, so memorization cannot be judged",
            f"fit logged {', '.join(sorted(history))}.\n  Fix: compile with metrics=['accuracy'].",
        )
    curve = history[metric]
    reached = next((epoch for epoch, value in enumerate(curve, 1) if value >= target_accuracy), None)
    epochs = f"{', '.join(f'{v:.2f}' for v in curve)}"
    if reached is None:
        return failed(
            NAME, pipeline,
            f"fit reached {max(curve):.4f} {metric} at best, below the target {target_accuracy:g}, in {len(curve)} epochs",
            f"{metric} by epoch: {epochs}; loss by epoch: {', '.join(f'{v:.3g}' for v in history.get('loss', []))}.\n"
            "  Likely causes: labels that do not match the images or the loss, a frozen or disconnected model, "
            "a learning rate far too high (diverges) or too low (stalls), inputs scaled far off.\n"
            "  Fix: run the labels, numerics and variables_change checks; then tune the learning rate or epochs.",
            best_accuracy=max(curve), epochs=len(curve),
        )
    agreement = agreement_of(run, tolerance)
    inference = agreement.values.get("recalibrated", agreement.values["evaluate"])
    evaluated = inference.get(metric, inference.get("accuracy"))
    numbers = {"reached_at_epoch": reached, "fit_accuracy": curve[-1], "recalibrated_accuracy": evaluated}
    if evaluated is not None and evaluated < target_accuracy - tolerance:
        return failed(
            NAME, pipeline,
            f"fit reached {metric} {target_accuracy:g} at epoch {reached}, but evaluate after BatchNorm "
            f"recalibration gives {evaluated:.4f} on the same images",
            f"{agreement}\n  The gap survives recalibration, so stale BN statistics do not explain it: "
            "look at the diagnosis above (preprocessing or training-only layers).",
            **numbers,
        )
    return passed(
        NAME, pipeline,
        f"fit reached {metric} {target_accuracy:g} at epoch {reached} of {len(curve)}; "
        f"evaluate after recalibration {evaluated:.4f}",
        f"{metric} by epoch: {epochs}.",
        **numbers,
    )
