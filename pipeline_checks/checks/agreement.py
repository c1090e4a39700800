"""Check: fit, train-mode, evaluate and predict agree on the training images."""

from __future__ import annotations

from pipeline_checks.oracle.agreement import DEFAULT_TOLERANCE, Agreement, measure_agreement
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.checks.validation import checked_seed, checked_pipeline
from pipeline_checks.run.training import TrainingRun, shared_run

NAME = "agreement"


def check_agreement(pipeline, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE) -> CheckResult:
    """Fit the pipeline and compare its metrics in five modes on the same images.

    What `fit` reported for its last epoch, a training-mode pass, `evaluate` and `predict`
    on the inference inputs (after the pipeline's `after_fit`), and `evaluate` after precise
    BatchNorm recalibration, which tells stale BN statistics apart from other causes.

    Args:
        pipeline: a `Pipeline`.
        seed: the seed of the shared training run.
        tolerance: allowed absolute gap on each compiled metric (see `Agreement`).

    Returns:
        A `CheckResult`; its details hold the table of modes and the diagnosis.

    Example:
        >>> check_agreement(pipeline).raise_if_failed()
    """
    pipeline, seed = checked_pipeline(pipeline), checked_seed(seed)
    agreement = agreement_of(shared_run(pipeline, seed), tolerance)
    numbers = key_numbers(agreement)
    if agreement.agrees:
        return passed(NAME, pipeline, f"the modes agree within {tolerance:g} on {agreement.samples} images", str(agreement), **numbers)
    failures = [f for f in agreement.findings if f.is_failure]
    return failed(NAME, pipeline, f"{failures[0].title}: {failures[0].detail}", str(agreement), **numbers)


def agreement_of(run: TrainingRun, tolerance: float = DEFAULT_TOLERANCE) -> Agreement:
    """The run's agreement, measured once per tolerance and kept with the run."""
    key = ("agreement", tolerance)
    if key not in run.cache:
        run.cache[key] = measure_agreement(
            run.model,
            (run.x_infer, run.y_train),
            run.history,
            batch_size=run.pipeline.batch_size,
            tolerance=tolerance,
            shuffle=bool(run.pipeline.fit_kwargs.get("shuffle", True)),
        )
    return run.cache[key]


def key_numbers(agreement: Agreement) -> dict:
    metric = next((m for m in agreement.gated if m != "loss"), "loss")
    numbers = {f"{mode}_{metric}": values[metric] for mode, values in agreement.values.items() if metric in values}
    if agreement.recalibration is not None and agreement.recalibration.layers:
        layers = agreement.recalibration.layers
        worst = max(layers, key=lambda layer: layer.drift)
        numbers.update(worst_bn_drift=worst.drift, worst_bn_layer=worst.path, bn_layers=[_statistics(c) for c in layers])
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
