"""The `pipeline-checks` console script.

Until the built-in suite lands, the main job runs the embedded default: the first bug
report (ResNet50 on three photographs, fit says 100%, evaluate 33%). It measures the five
modes, shows the diagnosis, recalibrates BatchNorm and measures again. It exits 0 when the
oracle catches the disagreement and recalibration resolves it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-checks",
        description="Run the agreement oracle on the embedded default: the fit-says-100%%, "
        "evaluate-says-33%% report.",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for images and Keras (default: 0)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1; received: {args.epochs}")
    if args.seed < 0:
        parser.error(f"--seed must be non-negative; received: {args.seed}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"Training ResNet50 (weights=None) on three photographs, one per class, {args.epochs} epochs...", flush=True)
    from pipeline_checks.agreement import measure_agreement
    from pipeline_checks.recalibration import recalibrate_batchnorm
    from pipeline_checks.scenarios import first_report

    report = first_report(seed=args.seed, epochs=args.epochs)
    data = (report.inputs, report.data.one_hot_labels)
    before = measure_agreement(report.model, data, report.history)
    print(f"\n{before}\n", flush=True)
    change = recalibrate_batchnorm(report.model, report.inputs, batch_size=len(report.inputs))
    after = measure_agreement(report.model, data, report.history, recalibrate=False)
    print(f"After pipeline_checks.recalibrate_batchnorm(model, x):\n{change}\n\n{after}")
    return 0 if not before.agrees and after.agrees else 1


if __name__ == "__main__":
    sys.exit(main())
