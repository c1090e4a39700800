"""The `pipeline-checks` console script.

    pipeline-checks                              the suite on the built-in pipelines
    pipeline-checks pkg.module:factory ...       the suite on your pipelines
    pipeline-checks diagnose MODEL.keras IMAGES  diagnose and fix a saved model
    pipeline-checks first-report                 the first bug report, reproduced and fixed

The suite runs through pytest (`pytest --pipeline-checks --pc-suite-only`) in the current
directory, so its pyproject.toml and conftest.py apply; the exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipeline_checks.cli import diagnose, first_report

COMMANDS = ("diagnose", "first-report")


def suite_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-checks",
        description="Run every pipeline check on the declared pipelines, or on built-in ones. "
        f"Other commands: {', '.join(COMMANDS)} (pipeline-checks COMMAND --help).",
    )
    parser.add_argument(
        "pipelines", nargs="*", metavar="MODULE:FACTORY",
        help="pipelines to check, e.g. my_project.pipelines:make_pipeline (default: those declared in "
        "pyproject.toml's [tool.pipeline_checks], else built-in pipelines for --models)",
    )
    parser.add_argument("--models", help="keras.applications names for the built-in pipelines, comma-separated")
    parser.add_argument("--seed", type=int, default=0, help="seed of every training run (default: 0)")
    parser.add_argument("--report", metavar="DIR", help="write a JSON report and BatchNorm plots to DIR")
    parser.add_argument("-k", dest="keyword", metavar="EXPRESSION", help="run only checks matching, as pytest -k (e.g. 'labels or numerics')")
    return parser


def run_suite(argv: list[str]) -> int:
    parser = suite_parser()
    args = parser.parse_args(argv)
    if args.seed is not None and args.seed < 0:
        parser.error(f"--seed must be non-negative; received: {args.seed}")
    import pytest

    # The same seed and order every run: pytest-randomly, where installed, would draw both.
    pytest_args = ["--pipeline-checks", "--pc-suite-only", "-v", "-p", "no:cacheprovider", "-p", "no:randomly"]
    # Framework deprecation notices are not findings about the pipeline: keep the summary readable.
    pytest_args += ["-W", "ignore::DeprecationWarning"]
    for flag, value in (("--pc-models", args.models), ("--pc-seed", args.seed), ("--pc-report", args.report), ("-k", args.keyword)):
        if value is not None:
            pytest_args += [flag, str(value)]
    if args.pipelines:
        pytest_args += ["--pc-pipelines", ",".join(args.pipelines)]
    return int(pytest.main(pytest_args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv and argv[0] == "first-report":
        return first_report.run_first_report(argv[1:])
    if argv and argv[0] == "diagnose":
        return diagnose.main(argv[1:])
    return run_suite(argv)


if __name__ == "__main__":
    sys.exit(main())
