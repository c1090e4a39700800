"""`pipeline-checks first-report`: the first bug report, reproduced, diagnosed and fixed.

Nothing heavy is imported until `run_first_report` has parsed its arguments.
"""

from __future__ import annotations

import argparse


def first_report_parser() -> argparse.ArgumentParser:
    """The `first-report` command's arguments: the seed and the number of epochs."""
    parser = argparse.ArgumentParser(
        prog="pipeline-checks first-report",
        description="Reproduce the first bug report (ResNet50 on three photographs: fit says 100%%, "
        "evaluate 33%%), diagnose it, recalibrate BatchNorm and measure again.",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for images and Keras (default: 0)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: until fit's accuracy is 1, at most 20)"
    )
    return parser


def run_first_report(argv: list[str]) -> int:
    """Exit 0 when the oracle catches the disagreement and recalibration resolves it."""
    parser = first_report_parser()
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1; received: {args.epochs}")
    if args.seed < 0:
        parser.error(f"--seed must be non-negative; received: {args.seed}")
    epochs = "until fit says 100%" if args.epochs is None else f"{args.epochs} epochs"
    print(f"Training ResNet50 (weights=None) on three photographs, one per class, {epochs}...", flush=True)
    from pipeline_checks.batchnorm.recalibration import recalibrate_batchnorm
    from pipeline_checks.oracle.agreement import measure_agreement
    from pipeline_checks.scenarios.bug_reports import first_report

    report = first_report(seed=args.seed, epochs=args.epochs)
    data = (report.inputs, report.data.one_hot_labels)
    before = measure_agreement(report.model, data, report.history)
    print(f"\n{before}\n", flush=True)
    change = recalibrate_batchnorm(report.model, report.inputs, batch_size=len(report.inputs))
    after = measure_agreement(report.model, data, report.history, recalibrate=False)
    print(f"After pipeline_checks.recalibrate_batchnorm(model, x):\n{change}\n\n{after}")
    return 0 if not before.agrees and after.agrees else 1
