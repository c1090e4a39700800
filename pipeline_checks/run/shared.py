"""Measurements that more than one check reads, taken once per run and kept with it."""

from __future__ import annotations

from pipeline_checks.oracle.agreement import (
    DEFAULT_TOLERANCE,
    Agreement,
    measure_agreement,
)
from pipeline_checks.run.training import TrainingRun


def agreement_of(run: TrainingRun, tolerance: float = DEFAULT_TOLERANCE) -> Agreement:
    """The run's five-mode agreement (the agreement and overfit checks), measured once per tolerance."""
    if tolerance not in run.agreements:
        run.agreements[tolerance] = measure_agreement(
            run.model,
            (run.x_infer, run.y_train),
            run.history,
            batch_size=run.pipeline.batch_size,
            tolerance=tolerance,
            shuffle=bool(run.pipeline.fit_kwargs.get("shuffle", True)),
        )
    return run.agreements[tolerance]
