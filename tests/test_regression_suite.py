"""A regression pipeline through `pytest --pipeline-checks`, as a project declares it: every check
judges it, and its baseline records predicted values rather than classes."""

import yaml
from helpers.projects import SUITE_ONLY


def test_a_declared_regression_pipeline_passes_every_check_and_its_baseline(pytester):
    pytester.makepyprojecttoml(
        '[tool.pipeline_checks]\npipelines = ["pipeline_checks.scenarios.builtin:regression_pipeline"]\n'
    )
    recorded = pytester.runpytest(*SUITE_ONLY, "--pc-update-baselines")
    recorded.assert_outcomes(passed=10)
    result = pytester.runpytest(*SUITE_ONLY)
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(["photos-regression: 10 passed, 0 failed"])
    (baseline,) = pytester.path.glob("**/photos-regression*.yml")
    figures = yaml.safe_load(baseline.read_text())["figures"]
    assert "predictions.class" not in figures and "predictions.output" not in figures
    assert len(figures["predictions.value"]) == 6
    assert figures["data.classes"] == []
