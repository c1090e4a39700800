"""`pytest --pipeline-checks` as a project meets it: declared pipelines, ids, summary, report."""

import json

import pytest

PIPELINES = """
    import numpy as np
    from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm
    from pipeline_checks.testing.small_models import small_bn_cnn

    PHOTOS = make_tiny_images(classes=3, per_class=4, size=16, kind="photos")


    def compiled():
        from pipeline_checks.model import compat

        keras = compat.keras()
        model = small_bn_cnn((16, 16, 3), classes=3)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


    def pipeline(name, after_fit):
        return Pipeline(
            name=name,
            build_model=compiled,
            data=PHOTOS,
            preprocess_train=lambda images: images / np.float32(255),
            fit_kwargs={"epochs": 10, "batch_size": 12},
            after_fit=after_fit,
        )


    def good():
        return pipeline("good", after_fit=lambda model, x: recalibrate_batchnorm(model, x, batch_size=12))


    def stale():
        return pipeline("stale", after_fit=None)


    def crashing():
        def build():
            raise FileNotFoundError("weights.h5")

        return Pipeline(name="crashing", build_model=build, data=PHOTOS)
"""


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
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=9)
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
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly")
    result.assert_outcomes(passed=8, failed=1)
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
    result.assert_outcomes(passed=2, deselected=8)
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
    result.assert_outcomes(passed=1, deselected=8)
    result.stdout.fnmatch_lines(["*test_labels[[]good] PASSED*"])


@pytest.mark.parametrize(
    "declared, message",
    [
        pytest.param("no_such_module:make", "ERROR: declared pipeline 'no_such_module:make': cannot import module 'no_such_module': ModuleNotFoundError*", id="no-module"),
        pytest.param("my_pipelines:missing", "ERROR: declared pipeline 'my_pipelines:missing': module 'my_pipelines' has no attribute 'missing'", id="no-attribute"),
        pytest.param("my_pipelines:PHOTOS", "ERROR: declared pipeline 'my_pipelines:PHOTOS' must be a pipeline_checks.Pipeline, a list of them, or a function returning either; received: *TinyImageDataset*", id="not-a-pipeline"),
        pytest.param("my_pipelines", "ERROR: Invalid pc_pipelines 'my_pipelines' from command line --pc-pipelines: expected 'package.module:factory' names; 'my_pipelines' given", id="no-colon"),
    ],
)
def test_a_declared_name_that_does_not_give_pipelines_is_named(project, declared, message):
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "--pc-pipelines", declared)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_pc_report_writes_json_and_a_batchnorm_plot(project):
    declare(project, "stale")
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", "agreement", "--pc-report", "out")
    result.stdout.fnmatch_lines(["wrote *out/report.json", "wrote *out/stale-batchnorm.png"])
    report = json.loads((project.path / "out" / "report.json").read_text())
    agreement = report["pipelines"]["stale"]["agreement"]
    assert agreement["passed"] is False and agreement["numbers"]["evaluate_accuracy"] < 1
    assert len(agreement["numbers"]["bn_layers"]) == 2
    assert (project.path / "out" / "stale-batchnorm.png").read_bytes()[:4] == b"\x89PNG"


def test_a_pipeline_whose_own_code_raises_fails_each_check_naming_the_step(project):
    declare(project, "crashing")
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", "labels or overfit")
    result.assert_outcomes(failed=2, deselected=7)
    result.stdout.fnmatch_lines(["Pipeline 'crashing': build_model raised FileNotFoundError: weights.h5"])
    assert "Traceback" not in result.stdout.str() and "raise FileNotFoundError" not in result.stdout.str()
