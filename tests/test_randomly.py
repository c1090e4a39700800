"""The gate under pytest-randomly: one seed for the checks, whatever randomly draws per test.

The project's addopts say `-p no:randomly`, so these runs enable it with `-p randomly`.
"""

import pytest

PIPELINES = """
    from pathlib import Path

    from pipeline_checks import Pipeline, make_tiny_images
    from pipeline_checks.testing.small_models import small_bn_cnn


    def build():
        with Path("builds.txt").open("a") as builds:  # one line per build_model call
            builds.write("build\\n")
        model = small_bn_cnn((8, 8, 3), classes=3, blocks=1, filters=4)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


    def good():
        return Pipeline(name="good", build_model=build, data=make_tiny_images(classes=3, per_class=2, size=8),
                        fit_kwargs={"epochs": 2, "batch_size": 6})
"""
# Checks that read the shared run only (no fit of their own), and the baseline.
SELECTED = ("--pipeline-checks", "--pc-suite-only", "-k", "labels or variables_change or baseline")


@pytest.fixture
def project(pytester):
    pytester.makepyfile(my_pipelines=PIPELINES)
    pytester.syspathinsert()
    pytester.makepyprojecttoml('[tool.pipeline_checks]\npipelines = ["my_pipelines:good"]\n')
    return pytester


def builds(project) -> int:
    path = project.path / "builds.txt"
    count = len(path.read_text().splitlines()) if path.is_file() else 0
    path.unlink(missing_ok=True)
    return count


def test_pytest_randomly_changes_neither_the_checks_seed_nor_the_baseline(project):
    recorded = project.runpytest(*SELECTED, "--pc-update-baselines", "-p", "no:randomly")
    recorded.assert_outcomes(passed=3, deselected=7)
    without_randomly = builds(project)

    result = project.runpytest(*SELECTED, "-p", "randomly", "--randomly-seed=2937359082", "-rA")
    result.assert_outcomes(passed=3, deselected=7)
    result.stdout.fnmatch_lines(["PASSED *test_baseline[[]good]"])
    # The checks' builds of the one shared run (the run itself, and the untrained build they share), randomly or not.
    assert builds(project) == without_randomly
