"""The console script `pipeline-checks`: its argument errors, what it hands pytest, and the main job end to end."""

import sys

import pytest

from pipeline_checks.cli.main import main, pytest_arguments, suite_parser
from pipeline_checks.pytest_plugin.settings import KNOBS


@pytest.mark.parametrize(
    "argv, message",
    [
        (["first-report", "--epochs", "0"], "--epochs must be at least 1; received: 0"),
        (["first-report", "--seed", "-1"], "--seed must be non-negative; received: -1"),
        (["--seed", "-1"], "argument --seed: expected a non-negative integer; received: -1"),
        (["--image-size", "0"], "argument --image-size: expected a positive integer or 'min'; received: 0"),
        (["--models", "ResNet"], "argument --models: Unknown application 'ResNet'"),
        (["--colour"], "unrecognized arguments: --colour"),
    ],
    ids=[
        "zero-epochs",
        "negative-seed",
        "suite-negative-seed",
        "suite-zero-size",
        "suite-unknown-model",
        "unknown-option",
    ],
)
def test_invalid_arguments_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_first_report_is_caught_and_recalibration_fixes_it(capsys):
    assert main(["first-report"]) == 0
    out = capsys.readouterr().out
    assert "Modes disagree on the same 3 samples" in out
    assert "Cause: stale BatchNormalization moving statistics" in out
    assert (
        "After pipeline_checks.recalibrate_batchnorm(model, x):\nRecalibrated 53 BatchNormalization layers on 3 "
        "samples in 1 batches." in out
    )
    assert out.rstrip().endswith("All modes agree.")


def test_the_suite_options_are_the_plugin_s_knobs():
    options = {action.dest: action for action in suite_parser()._actions}
    for knob in KNOBS:
        if knob.name == "pipelines":
            assert options["pipelines"].nargs == "*"  # given as positional MODULE:FACTORY names
        else:
            assert options[knob.name].option_strings == ["--" + knob.name.replace("_", "-")]
            assert options[knob.name].default is None  # left to the ini file and pyproject.toml


def test_unset_options_are_left_to_pytest_s_configuration():
    args = pytest_arguments([])
    assert not any(arg.startswith("--pc-") and arg != "--pc-suite-only" for arg in args)
    assert "--pc-seed" not in args


def test_options_become_pc_flags_and_everything_after_the_double_dash_goes_to_pytest():
    args = pytest_arguments(
        [
            "pkg.a:make",
            "pkg.b:make",
            "--seed",
            "4",
            "--image-size",
            "min",
            "-k",
            "labels",
            "--",
            "--junitxml=report.xml",
            "-n",
            "2",
            "--",
            "x",
        ]
    )
    assert args[:2] == ["--pipeline-checks", "--pc-suite-only"]
    assert args[args.index("--pc-seed") + 1] == "4"
    assert args[args.index("--pc-image-size") + 1] == "min"
    assert args[args.index("--pc-pipelines") + 1] == "pkg.a:make,pkg.b:make"
    assert args[args.index("-k") + 1] == "labels"
    assert args[-5:] == ["--junitxml=report.xml", "-n", "2", "--", "x"]


SHOW_SEED = """
from pipeline_checks.pytest_plugin.plugin import SETTINGS_KEY


def pytest_report_header(config):
    return f"RESOLVED SEED {config.stash[SETTINGS_KEY].seed}"
"""


@pytest.mark.parametrize(
    "argv, expected",
    [([], "RESOLVED SEED 7"), (["--seed", "3"], "RESOLVED SEED 3")],
    ids=["pyproject-seed-stands", "seed-option-wins"],
)
def test_a_seed_in_pyproject_stands_unless_seed_is_given(pytester, argv, expected):
    pytester.makepyprojecttoml("[tool.pipeline_checks]\nseed = 7\n")
    pytester.makeconftest(SHOW_SEED)
    # Nothing is selected: only the header matters. --co keeps the built-in pipelines untrained.
    result = pytester.run(
        sys.executable,
        "-m",
        "pipeline_checks.cli.main",
        *argv,
        "--models",
        "MobileNetV2",
        "--",
        "--co",
        "--junitxml=report.xml",
        "-k",
        "labels",
    )
    result.stdout.fnmatch_lines([expected])
    assert result.ret == 0
    assert "Warning" not in result.stdout.str()  # e.g. pytest's about the plugin imported before rewriting
    assert (pytester.path / "report.xml").is_file()  # the pass-through reached pytest
