"""The console script `pipeline-checks`: its argument errors and the main job end to end."""

import pytest

from pipeline_checks.cli.main import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["first-report", "--epochs", "0"], "--epochs must be at least 1; received: 0"),
        (["first-report", "--seed", "-1"], "--seed must be non-negative; received: -1"),
        (["--seed", "-1"], "--seed must be non-negative; received: -1"),
        (["--colour"], "unrecognized arguments: --colour"),
    ],
    ids=["zero-epochs", "negative-seed", "suite-negative-seed", "unknown-option"],
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
    assert "After pipeline_checks.recalibrate_batchnorm(model, x):\nRecalibrated 53 BatchNormalization layers on 3 samples in 1 batches." in out
    assert out.rstrip().endswith("All modes agree.")
