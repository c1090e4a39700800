"""CI at scale: `pytest -n 2 --pipeline-checks` (pytest-xdist) and `--pc-shard INDEX/COUNT`.

Two tiny declared pipelines; every `fit` logs the pipeline and the worker that ran it, so a
test sees how often, and where, each pipeline was trained.
"""

import json
import re
import xml.etree.ElementTree as ET

import pytest
from helpers.projects import SUITE_ONLY, pipelines_module

PIPELINES = pipelines_module(
    """
    import os
    from pathlib import Path

    FITS = Path(__file__).with_name("fits.log")


    def logged(name, crash=False):
        from pipeline_checks.model import compat

        class LogFit(compat.keras().callbacks.Callback):
            def on_train_begin(self, logs=None):
                with FITS.open("a") as log:
                    log.write(f"{name} {os.environ.get('PYTEST_XDIST_WORKER', 'serial')}\\n")
                if crash:
                    os._exit(3)  # the worker dies inside the pipeline's fit

        return LogFit()


    def pipeline(name, crash=False):
        return Pipeline(
            name=name,
            build_model=compiled,
            data=PHOTOS,
            preprocess_train=scaled,
            fit_kwargs={"epochs": 2, "batch_size": 12, "callbacks": [logged(name, crash)]},
            after_fit=recalibrated,
        )


    def two():
        return [pipeline("first"), pipeline("second")]


    def first_crashes():
        return [pipeline("first", crash=True), pipeline("second")]
"""
)

CHECKS = "agreement or labels or numerics or variables_change"


@pytest.fixture
def project(pytester):
    pytester.makepyfile(my_pipelines=PIPELINES)
    pytester.makepyprojecttoml('[tool.pipeline_checks]\npipelines = ["my_pipelines:two"]\n')
    pytester.syspathinsert()
    return pytester


def fits(project) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in (project.path / "fits.log").read_text().splitlines()]


def test_two_workers_train_each_pipeline_once_and_the_controller_reports(project):
    pytest.importorskip("xdist")
    result = project.runpytest_subprocess(
        "-n",
        "2",
        "-v",
        *SUITE_ONLY,
        "-k",
        CHECKS,
        "--pc-report",
        "out",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=8)
    # --dist loadgroup, chosen by the plugin, and each pipeline's tests on one worker.
    result.stdout.fnmatch_lines(["scheduling tests via PipelineScheduling"])
    workers = {}
    for line in result.outlines:
        found = re.match(r"\[(gw\d)\] .*PASSED pipeline-checks::test_\w+\[(\w+)\]", line)
        if found:
            workers.setdefault(found.group(2), set()).add(found.group(1))
    assert sorted(workers) == ["first", "second"] and all(len(ran_on) == 1 for ran_on in workers.values()), workers
    # One training run per pipeline in the whole session, on one worker.
    trained = fits(project)
    assert sorted(name for name, _worker in trained) == ["first", "second"]
    assert all(worker.startswith("gw") for _name, worker in trained)
    # The controller prints the summary, in the serial run's order, and writes the report.
    result.stdout.fnmatch_lines(
        [
            "*= pipeline-checks summary =*",
            "first: 4 passed, 0 failed",
            "  agreement         passed  *",
            "  labels            passed  *",
            "  numerics          passed  *",
            "  variables_change  passed  *",
            "second: 4 passed, 0 failed",
            "  agreement         passed  *",
            "wrote *out/report.json",
            "wrote *out/report.md",
        ]
    )
    report = json.loads((project.path / "out" / "report.json").read_text())
    assert {name: sorted(checks) for name, checks in report["pipelines"].items()} == {
        name: ["agreement", "labels", "numerics", "variables_change"] for name in ("first", "second")
    }
    assert "## second: 4 passed, 0 failed" in (project.path / "out" / "report.md").read_text()
    properties = [p.get("name") for p in ET.parse(project.path / "junit.xml").iter("property")]
    assert properties.count("pipeline_checks.check") == 8


def test_a_worker_that_dies_in_a_pipeline_s_fit_errors_that_pipeline_s_other_tests_once_and_the_rest_run(project):
    pytest.importorskip("xdist")
    project.makepyprojecttoml('[tool.pipeline_checks]\npipelines = ["my_pipelines:first_crashes"]\n')
    # Two restarts allowed, so that today's main, which gives the tests to a new worker each crash, ends soon.
    result = project.runpytest_subprocess(
        "-n",
        "2",
        "--max-worker-restart=2",
        *SUITE_ONLY,
        "-k",
        CHECKS,
        "--pc-report",
        "out",
        "--junitxml=junit.xml",
        timeout=300,
    )
    result.assert_outcomes(passed=4, failed=1, errors=3)
    assert sorted(name for name, _worker in fits(project)) == ["first", "second"]  # first trained (and crashed) once
    result.stdout.no_fnmatch_line("*maximum crashed workers reached*")
    crash = "worker 'gw?' crashed while running 'pipeline-checks::test_agreement[[]first]'"
    result.stdout.fnmatch_lines(
        [
            "first: 0 passed, 4 failed (4 errors)",
            f"  agreement         ERROR   {crash}",
            f"  labels            ERROR   not run: {crash}",
            "second: 4 passed, 0 failed",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_labels[[]first] _*",
            f"not run: {crash}",
            "(the other tests of pipeline 'first' are not run, as each would train it again and crash again; *)",
            "ERROR pipeline-checks::test_labels[[]first] - not run: worker*",
        ]
    )
    assert [
        c.get("name") for c in ET.parse(project.path / "junit.xml").iter("testcase") if c.find("error") is not None
    ] == ["test_agreement[first]", "test_labels[first]", "test_numerics[first]", "test_variables_change[first]"]
    report = json.loads((project.path / "out" / "report.json").read_text())
    assert report["totals"] == {"checks": 8, "failed": 4, "errors": 4}
    assert "8 checks on 2 pipelines: 4 failed (4 errors)." in (project.path / "out" / "report.md").read_text()


def test_a_serial_run_also_trains_each_pipeline_once(project):
    result = project.runpytest_subprocess("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", CHECKS)
    result.assert_outcomes(passed=8)
    assert fits(project) == [("first", "serial"), ("second", "serial")]


@pytest.mark.parametrize(
    "nodeid, group",
    [
        ("pipeline-checks::test_labels[resnet-photos]", "pipeline:resnet-photos"),
        ("pipeline-checks::test_labels[resnet]", "pipeline:resnet"),
        ("tests/test_mine.py::test_fit[resnet-photos-3]", "pipeline:resnet-photos"),
        ("tests/test_mine.py::test_fit[3-resnet]", "pipeline:resnet"),
        ("tests/test_mine.py::test_other[7]", None),
        ("tests/test_mine.py::test_plain", None),
    ],
)
def test_a_node_id_s_group_is_the_pipeline_its_parameters_name(nodeid, group):
    from pipeline_checks.pytest_plugin.xdist_scheduling import pipeline_group

    assert pipeline_group(nodeid, ["resnet", "resnet-photos"]) == group


def selected(result) -> list[str]:
    return sorted(line for line in result.outlines if "::" in line)


def test_shards_give_every_pipeline_to_exactly_one_shard(project):
    project.makepyfile(test_own="def test_own():\n    pass\n")
    shards = []
    for index in (1, 2, 3):
        result = project.runpytest("--pipeline-checks", "--co", "-q", "-p", "no:randomly", f"--pc-shard={index}/3")
        assert result.ret == 0
        shards.append(selected(result))
    assert all("[first]" in test for test in shards[0] if "pipeline-checks::" in test)
    assert "test_own.py::test_own" in shards[0]  # tests of no pipeline: the first shard
    assert shards[1] and all("[second]" in test for test in shards[1])
    assert shards[2] == []  # three shards, two pipelines
    everything = selected(project.runpytest("--pipeline-checks", "--co", "-q", "-p", "no:randomly"))
    assert sorted(shards[0] + shards[1] + shards[2]) == everything and len(everything) == 21
    assert not (project.path / "fits.log").exists()  # collection trains nothing
    empty = project.runpytest("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "--pc-shard=3/3")
    assert empty.ret == pytest.ExitCode.OK  # more shards than pipelines: nothing to check is no failure


@pytest.mark.parametrize("value", ["0/2", "3/2", "two", "1/"])
def test_an_invalid_shard_is_a_usage_error_naming_it(project, value):
    result = project.runpytest("--pipeline-checks", "--co", f"--pc-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: Invalid pc_shard '{value}' from command line --pc-shard: expected INDEX/COUNT with 1 <= INDEX <= "
            "COUNT, e.g. 1/3"
        ]
    )
