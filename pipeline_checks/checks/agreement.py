"""Check: fit, train-mode, evaluate and predict agree on the training images (or examples)."""

from __future__ import annotations

from pipeline_checks._validation import check_number
from pipeline_checks.checks.family import family
from pipeline_checks.oracle.agreement import DEFAULT_TOLERANCE, Agreement
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import verdict
from pipeline_checks.run.shared import agreement_of
from pipeline_checks.run.training import shared_run, stages_of

NAME = "agreement"


@family(NAME, per_output=True)
def check_agreement(pipeline, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE) -> CheckResult:
    """Fit the pipeline and compare its metrics in five modes on the same images.

    What `fit` reported for its last epoch, a training-mode pass, `evaluate` and `predict`
    on the inference inputs (after the pipeline's `after_fit`), and `evaluate` after precise
    BatchNorm recalibration, which tells stale BN statistics apart from other causes. On a
    regression (float targets that are values) each mode's R² of the predictions
    (`predicted_r2`) is compared, and every compiled metric in the targets' scale (see `Agreement`).

    Args:
        pipeline: a `Pipeline`.
        seed: the seed of the shared training run.
        tolerance: allowed absolute gap on each compiled metric, on a regression a share of
            the targets' std (mae, rmse) or variance (mse, R²) (see `Agreement`).

    Returns:
        A `CheckResult`, failed when any gap fails (see `Agreement`): its summary names the
        gaps, its details list the gaps and their likely causes, then the table of modes.

    With the pipeline's own `train` function, the fit mode is the last stage's last epoch;
    after a custom loop (no fit) there is no fit mode, and the summary says so: the other
    modes are compared.

    Example:
        >>> check_agreement(pipeline).raise_if_failed()
    """
    check_number("tolerance", tolerance, "a number in [0, 1)", 0, 1)  # before training, as measure_agreement does
    run = shared_run(pipeline, seed)
    agreement = agreement_of(run, tolerance)
    numbers = key_numbers(agreement)
    scale = " of the targets' scale" if agreement.task == "regression" else ""
    agreed = f"the modes agree within {tolerance:g}{scale} on {agreement.samples} {agreement.examples}"
    if run.custom_loop:
        agreed += f"; {NO_FIT_MODE}"
    table = f"{agreement.header}\n{agreement.table()}"
    notes = [table, _stages_note(run)]
    # Each gap's summary is a sentence of its own, so they join with a space.
    headline = _headline(numbers, gated_metric(agreement), agreement.batchnorm.count > 0)
    return verdict(NAME, pipeline, agreement.findings, agreed, notes, headline, join=" ", **numbers)


NO_FIT_MODE = (
    "fit's numbers do not exist for a custom loop, so train-mode, evaluate, predict and recalibrated were compared"
)


def _stages_note(run) -> str:
    """What the fit mode stands for in a run in stages; "" for a run of one fit."""
    stages = stages_of(run)
    if run.custom_loop:
        return f"No fit mode: {NO_FIT_MODE}."
    if len(stages) > 1:
        return f"The fit mode is the last stage's ({stages[-1].label} of {len(stages)} stages) last epoch."
    return ""


def gated_metric(agreement: Agreement) -> str:
    """The metric the key numbers report: the first gated one other than the loss (accuracy, acc,
    binary_accuracy, the oracle's own predicted_accuracy, or on a regression its predicted_r2),
    else the loss."""
    return next((m for m in agreement.gated if m != "loss"), "loss")


def key_numbers(agreement: Agreement) -> dict:
    metric = gated_metric(agreement)
    numbers = {f"{mode}_{metric}": values[metric] for mode, values in agreement.values.items() if metric in values}
    if agreement.recalibration is not None and agreement.recalibration.layers:
        layers = agreement.recalibration.layers
        worst = max(layers, key=lambda layer: layer.drift)
        numbers.update(
            worst_bn_drift=worst.drift, worst_bn_layer=worst.path, bn_layers=[_statistics(c) for c in layers]
        )
    return numbers


def _statistics(change) -> dict:
    """One BN layer's moving statistics against the data's, averaged over channels, for reports."""
    return {
        "path": change.path,
        "moving_mean": float(change.before_mean.mean()),
        "data_mean": float(change.after_mean.mean()),
        "moving_variance": float(change.before_variance.mean()),
        "data_variance": float(change.after_variance.mean()),
        "drift": change.drift,
    }


def _headline(numbers: dict, metric: str, batchnorm: bool) -> str:
    """The gated metric in fit, evaluate and (with BatchNormalization layers) after recalibration, and
    the worst BN drift: the suite's one line, e.g. "accuracy fit 1.00, evaluate 0.33, recalibrated 1.00"."""
    labels = ("fit", "evaluate", "recalibrated") if batchnorm else ("fit", "evaluate")
    modes = [(label, numbers.get(f"{label}_{metric}")) for label in labels]
    measured = ", ".join(f"{label} {value:.2f}" for label, value in modes if value is not None)
    parts = [f"{metric} {measured}"] if measured else []
    if "worst_bn_drift" in numbers:
        parts.append(f"worst BN drift {numbers['worst_bn_drift']:.3g} ({numbers['worst_bn_layer']})")
    return "; ".join(parts)
