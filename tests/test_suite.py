"""`pytest --pipeline-checks` as a project meets it: declared pipelines, ids, summary, report."""

import json
import xml.etree.ElementTree as ET

import pytest
from helpers.projects import SUITE_ONLY, pipelines_module

PIPELINES = pipelines_module(
    """
    def pipeline(name, after_fit):
        return Pipeline(
            name=name,
            build_model=compiled,
            data=PHOTOS,
            preprocess_train=scaled,
            fit_kwargs={"epochs": 10, "batch_size": 12},
            after_fit=after_fit,
        )


    def good():
        return pipeline("good", after_fit=lambda model, x: recalibrate_batchnorm(model, x, batch_size=12))


    def stale():
        return pipeline("stale", after_fit=None)


    def warning():
        import warnings

        def preprocess(images):
            warnings.warn("the user's own deprecation", DeprecationWarning)
            warnings.warn_explicit(
                "a framework's deprecation", DeprecationWarning, "keras/src/fake.py", 1, module="keras.src.fake"
            )
            return images / np.float32(255)

        return Pipeline(name="warning", build_model=compiled, data=PHOTOS, preprocess_train=preprocess)


    def crashing():
        def build():
            raise FileNotFoundError("weights.h5")

        return Pipeline(name="crashing", build_model=build, data=PHOTOS)


    def failing_after_fit():
        from pathlib import Path

        from pipeline_checks.model import compat

        class LogFit(compat.keras().callbacks.Callback):
            def on_train_begin(self, logs=None):
                with Path(__file__).with_name("fits.log").open("a") as log:
                    log.write("fit\\n")

        def after_fit(model, x):
            raise ValueError("no labels.txt beside the model")

        return Pipeline(
            name="failing", build_model=compiled, data=PHOTOS, preprocess_train=lambda images: images / np.float32(255),
            fit_kwargs={"epochs": 2, "batch_size": 12, "callbacks": [LogFit()]}, after_fit=after_fit,
        )
"""
)


@pytest.fixture
def project(pytester):
    pytester.makepyfile(my_pipelines=PIPELINES)
    pytester.syspathinsert()
    return pytester


def declare(pytester, *names):
    pytester.makepyprojecttoml(
        "[tool.pipeline_checks]\npipelines = [" + ", ".join(f'"my_pipelines:{n}"' for n in names) + "]\n"
    )


def test_a_correct_declared_pipeline_passes_every_check(project):
    declare(project, "good")
    # test_baseline compares with a recorded run: tests/test_baseline_files.py.
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-v", "-p", "no:randomly", "-k", "not baseline")
    result.assert_outcomes(passed=9, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*pipeline-checks::test_agreement[[]good] PASSED*",
            "*pipeline-checks::test_save_load[[]good] PASSED*",
            "*= pipeline-checks summary =*",
            "good: 9 passed, 0 failed",
            "  agreement         passed  accuracy fit 1.00, evaluate 1.00, recalibrated 1.00; worst BN drift *",
        ]
    )


def test_a_broken_pipeline_fails_the_checks_that_catch_it(project):
    declare(project, "stale")
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", "not baseline")
    result.assert_outcomes(passed=8, failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*Cause: stale BatchNormalization moving statistics*",
            "stale: 8 passed, 1 failed",
            # How far evaluate falls with stale statistics depends on rounding; that it falls does not.
            "  agreement         FAILED  accuracy fit 1.00, evaluate 0.[0-9][0-9], recalibrated 1.00*",
            "FAILED pipeline-checks::test_agreement[[]stale] - *",
        ]
    )


def test_the_project_s_own_tests_run_beside_the_suite_unless_suite_only(project):
    declare(project, "good")
    project.makepyfile(test_own="def test_own():\n    assert True\n")
    result = project.runpytest("--pipeline-checks", "-p", "no:randomly", "-k", "own or labels")
    result.assert_outcomes(passed=2, deselected=9)
    assert project.runpytest("-p", "no:randomly").parseoutcomes() == {"passed": 1}  # no suite without the flag


def test_a_conftest_pipeline_fixture_replaces_the_declared_ones(project):
    project.makeconftest(
        """
        import pytest
        import my_pipelines

        @pytest.fixture(params=["good"])
        def pipeline(request):
            return getattr(my_pipelines, request.param)()
        """
    )
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", "labels", "-v")
    result.assert_outcomes(passed=1, deselected=9)
    result.stdout.fnmatch_lines(["*test_labels[[]good] PASSED*"])


@pytest.mark.parametrize(
    "declared, message",
    [
        pytest.param(
            "no_such_module:make",
            "ERROR: declared pipeline 'no_such_module:make': no module named 'no_such_module' (looked in the current "
            "directory *",
            id="no-module",
        ),
        pytest.param(
            "my_pipelines:missing",
            "ERROR: declared pipeline 'my_pipelines:missing': module 'my_pipelines' has no attribute 'missing'; *",
            id="no-attribute",
        ),
        pytest.param(
            "my_pipelines:PHOTOS",
            "ERROR: declared pipeline 'my_pipelines:PHOTOS' must be a pipeline_checks.Pipeline, a list of them, or a "
            "function returning either; received: *TinyImageDataset*",
            id="not-a-pipeline",
        ),
        pytest.param(
            "my_pipelines",
            "ERROR: Invalid pc_pipelines 'my_pipelines' from command line --pc-pipelines: expected "
            "'package.module:factory' names; 'my_pipelines' given",
            id="no-colon",
        ),
    ],
)
def test_a_declared_name_that_does_not_give_pipelines_is_named(project, declared, message):
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "--pc-pipelines", declared)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_pc_report_writes_json_markdown_and_a_batchnorm_plot_and_junit_carries_the_numbers(project):
    declare(project, "stale")
    result = project.runpytest(
        *SUITE_ONLY,
        "-k",
        "agreement",
        "--pc-report",
        "out",
        "--junitxml=junit.xml",
    )
    result.stdout.fnmatch_lines(["wrote *out/report.json", "wrote *out/report.md", "wrote *out/stale-batchnorm.png"])
    report = json.loads((project.path / "out" / "report.json").read_text())
    agreement = report["pipelines"]["stale"]["agreement"]
    assert agreement["passed"] is False and agreement["numbers"]["evaluate_accuracy"] < 1
    assert len(agreement["numbers"]["bn_layers"]) == 2
    assert (project.path / "out" / "stale-batchnorm.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (project.path / "out" / "report.md").read_text()
    assert "1 checks on 1 pipelines: 1 failed." in markdown
    assert "## stale: 0 passed, 1 failed" in markdown
    assert "| agreement | **FAILED** | accuracy fit 1.00, evaluate 0." in markdown
    case = next(
        c for c in ET.parse(project.path / "junit.xml").iter("testcase") if c.get("name") == "test_agreement[stale]"
    )
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["pipeline_checks.pipeline"] == "stale"
    assert properties["pipeline_checks.check"] == "agreement"
    assert properties["pipeline_checks.passed"] == "False"
    assert float(properties["pipeline_checks.agreement.evaluate_accuracy"]) == agreement["numbers"]["evaluate_accuracy"]
    assert "pipeline_checks.agreement.bn_layers" not in properties  # tables stay in report.json


def test_framework_deprecations_inside_a_check_are_filtered_and_the_user_s_are_not(project):
    declare(project, "warning")
    result = project.runpytest(
        "--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", "preprocessing", "-W", "default"
    )
    result.assert_outcomes(passed=1, deselected=9)
    result.stdout.fnmatch_lines(["*DeprecationWarning: the user's own deprecation*"])
    result.stdout.no_fnmatch_line("*a framework's deprecation*")


PER_PIPELINE = """
[tool.pipeline_checks]
pipelines = ["my_pipelines:good"]

[tool.pipeline_checks.pipeline.good]
skip = {determinism = "cuDNN kernels are not deterministic on our runners"}
overfit = {target_accuracy = 2}
"""


def test_per_pipeline_tables_skip_a_family_with_its_reason_and_give_check_options(project):
    project.makepyprojecttoml(PER_PIPELINE)
    result = project.runpytest(
        "--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-rs", "-k", "determinism or overfit"
    )
    # The option reaches check_overfit, which refuses the value before anything trains.
    result.assert_outcomes(skipped=1, failed=1, deselected=8)
    result.stdout.fnmatch_lines(
        [
            "Invalid pyproject.toml [[]tool.pipeline_checks.pipeline.good[]] overfit = {'target_accuracy': 2}: "
            "target_accuracy must be *",
            "SKIPPED*cuDNN kernels are not deterministic on our runners (pyproject.toml "
            "[[]tool.pipeline_checks.pipeline.good[]] skip.determinism)",
        ]
    )


@pytest.mark.parametrize(
    "table, message",
    [
        pytest.param(
            "[tool.pipeline_checks.pipeline.other]\noverfit = {tolerance = 0.1}",
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks.pipeline.other[]]: no declared pipeline is named "
            "'other'; the pipelines are 'good'",
            id="unknown-pipeline",
        ),
        pytest.param(
            "[tool.pipeline_checks.pipeline.good]\noverfit = {target = 0.9}",
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks.pipeline.good[]] overfit.target = 0.9: "
            "check_overfit takes no 'target'; it takes target_accuracy, tolerance, target_r2",
            id="unknown-keyword",
        ),
        pytest.param(
            "[tool.pipeline_checks.pipeline.good]\noverfitting = {tolerance = 0.1}",
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks.pipeline.good[]] overfitting = {'tolerance': 0.1}: "
            "unknown key 'overfitting'; expected 'skip', 'baseline' (its tolerances) or a check family: agreement, *",
            id="unknown-family",
        ),
        pytest.param(
            '[tool.pipeline_checks.pipeline.good]\nskip = ["determinism"]',
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks.pipeline.good[]] skip = [[]'determinism'[]]: "
            "expected a table of check family -> reason*",
            id="skip-without-reasons",
        ),
        pytest.param(
            '[tool.pipeline_checks.pipeline.good]\nskip = {determinism = ""}',
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks.pipeline.good[]] skip.determinism = '': expected "
            "the reason, a non-empty string",
            id="empty-reason",
        ),
        pytest.param(
            "[tool.pipeline_checks.pipeline.good]\nlabels = 3",
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks.pipeline.good[]] labels = 3: expected a table of "
            "labels's keyword arguments*",
            id="options-not-a-table",
        ),
    ],
)
def test_per_pipeline_tables_are_validated_naming_the_key_and_the_value(project, table, message):
    project.makepyprojecttoml('[tool.pipeline_checks]\npipelines = ["my_pipelines:good"]\n\n' + table + "\n")
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_pipeline_whose_own_code_raises_fails_each_check_naming_the_step(project):
    declare(project, "crashing")
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", "labels or overfit")
    result.assert_outcomes(failed=2, deselected=8)
    result.stdout.fnmatch_lines(["Pipeline 'crashing': build_model raised FileNotFoundError: weights.h5"])
    assert "Traceback" not in result.stdout.str() and "raise FileNotFoundError" not in result.stdout.str()


def test_a_check_that_raises_is_an_error_that_counts_as_failed_in_the_summary_the_reports_and_junit(project):
    declare(project, "good", "crashing")
    result = project.runpytest(
        *SUITE_ONLY,
        "-k",
        "labels",
        "--pc-report",
        "out",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=1, failed=1, deselected=18)
    result.stdout.fnmatch_lines(
        [
            "*= pipeline-checks summary =*",
            "good: 1 passed, 0 failed",
            "crashing: 0 passed, 1 failed (1 error)",
            "  labels            ERROR   Pipeline 'crashing': build_model raised FileNotFoundError: weights.h5",
        ]
    )
    markdown = (project.path / "out" / "report.md").read_text()
    assert "2 checks on 2 pipelines: 1 failed (1 error)." in markdown and "all passed" not in markdown
    assert "| labels | **ERROR** | Pipeline 'crashing': build_model raised FileNotFoundError: weights.h5 |" in markdown
    report = json.loads((project.path / "out" / "report.json").read_text())
    labels = report["pipelines"]["crashing"]["labels"]
    assert labels["passed"] is False and labels["error"] is True
    assert labels["details"].startswith("(caused by: FileNotFoundError")
    assert report["totals"] == {"checks": 2, "failed": 1, "errors": 1}
    case = next(
        c for c in ET.parse(project.path / "junit.xml").iter("testcase") if c.get("name") == "test_labels[crashing]"
    )
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["pipeline_checks.passed"] == "False" and properties["pipeline_checks.error"] == "True"
    assert properties["pipeline_checks.check"] == "labels" and properties["pipeline_checks.pipeline"] == "crashing"


def test_a_run_that_fails_after_fit_is_trained_once_and_each_later_check_reports_the_same_failure(project):
    declare(project, "failing_after_fit")
    checks = "agreement or frozen_layers or numerics or variables_change"
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", checks)
    result.assert_outcomes(failed=4, deselected=6)
    assert (project.path / "fits.log").read_text() == "fit\n"  # not once per check
    # The first check's message is the pipeline's error; each later one's says it is the same failure.
    same = (
        "(the same failure as pipeline-checks::test_agreement[failing]: "
        "a failed run is remembered for the session, not trained again)"
    )
    # Counted in the failures' sections: under CI=true pytest's short summary repeats whole messages.
    sections = result.stdout.str().split("short test summary info")[0]
    assert sections.count(same) == 3
    result.stdout.fnmatch_lines(
        [
            "*_ test_frozen_layers[[]failing] _*",
            "Pipeline 'failing': after_fit raised ValueError: no labels.txt beside the model",
            same.replace("[", "[[]"),
            "(caused by: ValueError; run the check directly for the traceback)",
            "failing: 0 passed, 4 failed (4 errors)",
            "  agreement         ERROR   Pipeline 'failing': after_fit raised ValueError: no labels.txt beside the "
            "model",
        ]
    )
