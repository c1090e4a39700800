"""The `pipeline-checks` console script.

    pipeline-checks                              the suite on the built-in pipelines
    pipeline-checks pkg.module:factory ...       the suite on your pipelines
    pipeline-checks --update-baselines           write or refresh the pipelines' baseline files
    pipeline-checks -- --junitxml=r.xml -n 2     everything after -- goes to pytest as is
    pipeline-checks diagnose MODEL.keras IMAGES  diagnose and fix a saved model
    pipeline-checks first-report                 the first bug report, reproduced and fixed

The suite runs through pytest (`pytest --pipeline-checks --pc-suite-only`) in the current
directory, so its pyproject.toml and conftest.py apply; the exit status is pytest's. The current
directory is on `sys.path` for the run, as `python -m pytest` puts it, so a console script finds
the project's modules as `python -m pytest` does (the rule of `pipeline_checks._imports`). Its
options are the plugin's settings (the same knob table as the `--pc-*` options), and an
option left out is left to the ini file and pyproject.toml, as in a pytest run.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipeline_checks import _imports
from pipeline_checks.cli import diagnose, first_report
from pipeline_checks.pytest_plugin.settings import KNOBS, Knob

COMMANDS = ("diagnose", "first-report")
# The `pipelines` knob is the positional MODULE:FACTORY arguments.
POSITIONAL_KNOBS = ("pipelines",)


def _checked(knob: Knob):
    """argparse type: the knob's own parser validates the value; pytest gets the text."""

    def check(value: str) -> str:
        try:
            knob.parse(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{error}; received: {value}") from None
        return value

    check.__name__ = knob.name
    return check


def suite_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-checks",
        description="Run every pipeline check on the declared pipelines, or on built-in ones. "
        f"Other commands: {', '.join(COMMANDS)} (pipeline-checks COMMAND --help).",
    )
    parser.add_argument(
        "pipelines",
        nargs="*",
        metavar="MODULE:FACTORY",
        help="pipelines to check, e.g. my_project.pipelines:make_pipeline (default: those declared in "
        "pyproject.toml's [tool.pipeline_checks], else built-in pipelines for --models)",
    )
    for knob in KNOBS:
        if knob.name in POSITIONAL_KNOBS:
            continue
        parser.add_argument(
            "--" + knob.name.replace("_", "-"),
            dest=knob.name,
            type=_checked(knob),
            metavar=knob.metavar,
            help=f"{knob.help} Same as pytest's {knob.flag}; left out, the ini file or pyproject.toml decides.",
        )
    parser.add_argument(
        "--update-baselines",
        action="store_true",
        help="write or refresh each pipeline's baseline file and pass; review and commit them (pytest's "
        "--pc-update-baselines)",
    )
    parser.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPRESSION",
        help="run only checks matching, as pytest -k (e.g. 'labels or numerics')",
    )
    parser.epilog = "Arguments after -- go to pytest as they are, e.g. pipeline-checks -- --junitxml=report.xml -n 2"
    return parser


def pytest_arguments(argv: list[str]) -> list[str]:
    """The pytest command line the suite runs: our options as --pc-* flags, then what follows --."""
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = suite_parser().parse_args(argv)

    # The same seed and order every run: pytest-randomly, where installed, would draw both.
    pytest_args = ["--pipeline-checks", "--pc-suite-only", "-v", "-p", "no:cacheprovider", "-p", "no:randomly"]
    # This script imported the package before pytest could mark the plugin for assertion rewriting;
    # the checks report through their results, not asserts, so pytest's warning about it is noise.
    pytest_args += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    # Framework deprecation notices are not findings about the pipeline: keep the summary readable.
    pytest_args += ["-W", "ignore::DeprecationWarning"]
    for knob in KNOBS:
        value = getattr(args, knob.name, None)
        if knob.name in POSITIONAL_KNOBS:
            value = ",".join(args.pipelines) or None
        if value is not None:  # unset: the ini file, pyproject.toml or the default decides
            pytest_args += [knob.flag, str(value)]
    if args.update_baselines:
        pytest_args.append("--pc-update-baselines")
    if args.keyword is not None:
        pytest_args += ["-k", args.keyword]
    return pytest_args + passthrough


def run_suite(argv: list[str]) -> int:
    pytest_args = pytest_arguments(argv)
    import pytest

    with _imports.on_path(_imports.current_directory().values()):
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
