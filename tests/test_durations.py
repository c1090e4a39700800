"""`pytest --pipeline-checks --pc-durations`: where each pipeline's seconds went."""

import json
import re
import time

import pytest
from helpers.projects import SUITE_ONLY, pipelines_module

from pipeline_checks.checks import FAMILIES as CHECK_FAMILIES
from pipeline_checks.pytest_plugin import durations
from pipeline_checks.run import timings as phases
from pipeline_checks.run.timings import Timings

PIPELINES = pipelines_module(
    """
    def pipeline(name):
        return Pipeline(
            name=name,
            build_model=compiled,
            data=PHOTOS,
            preprocess_train=scaled,
            fit_kwargs={"epochs": 2, "batch_size": 12},
            after_fit=recalibrated,
        )


    def good():
        return pipeline("good")


    def two():
        return [pipeline("first"), pipeline("second")]
"""
)

FAMILIES = list(CHECK_FAMILIES)
RUN_PHASES = [
    phases.READ_DATA,
    phases.BUILD_MODEL,
    phases.INITIAL_LOSS,
    phases.FIRST_STEP,
    phases.REMAINING_STEPS,
    phases.AFTER_FIT,
]
HEADER = re.compile(
    r"^(?P<name>[\w-]+): (?P<total>\d+\.\d\d)s "
    r"\(training run (?P<run>\d+\.\d\d)s, checks (?P<checks>\d+\.\d\d)s\)$"
)
ROW = re.compile(r"^\s+(?P<seconds>\d+\.\d\d)s\s+(?P<share>\d+\.\d)%  (?P<kind>run|check)\s+(?P<name>.+)$")


def parse(lines: list[str]) -> dict:
    """The --pc-durations section: per pipeline, its header's numbers and its rows."""
    start = next(i for i, line in enumerate(lines) if durations.TITLE in line)
    parsed, current = {}, None
    for line in lines[start + 1 :]:
        if line.startswith(("suite: ", "=", "wrote ")):
            break
        header, row = HEADER.match(line), ROW.match(line)
        if header:
            current = parsed[header["name"]] = {
                "total": float(header["total"]),
                "run": float(header["run"]),
                "checks": float(header["checks"]),
                "rows": [],
            }
        else:
            assert row and current is not None, line
            current["rows"].append((row["kind"], row["name"], float(row["seconds"]), float(row["share"])))
    return parsed


def assert_adds_up(pipeline: dict) -> None:
    rows = pipeline["rows"]
    assert [name for kind, name, *_ in rows if kind == "run"][: len(RUN_PHASES)] == RUN_PHASES
    assert [name for kind, name, *_ in rows if kind == "check"] == FAMILIES
    assert all(seconds >= 0 and share >= 0 for _kind, _name, seconds, share in rows)
    assert pipeline["total"] > 0 and pipeline["run"] > 0
    rounding = 0.005 * len(rows) + 0.01
    run_rows = sum(seconds for kind, _name, seconds, _share in rows if kind == "run")
    assert abs(run_rows - pipeline["run"]) <= rounding  # the phases, "other" included, are the run
    assert sum(seconds for *_, seconds, _share in rows) <= pipeline["total"] + rounding
    assert abs(pipeline["run"] + pipeline["checks"] - pipeline["total"]) <= 0.011
    assert abs(sum(share for *_, share in rows) - 100) <= 0.05 * len(rows) + 0.1


@pytest.fixture
def project(pytester):
    pytester.makepyfile(my_pipelines=PIPELINES)
    pytester.syspathinsert()
    return pytester


def declare(pytester, factory):
    pytester.makepyprojecttoml(f'[tool.pipeline_checks]\npipelines = ["my_pipelines:{factory}"]\n')


def test_the_section_lists_each_run_phase_and_each_check_and_adds_up(project):
    declare(project, "good")
    result = project.runpytest(
        "--pipeline-checks",
        "--pc-suite-only",
        "--pc-durations",
        "-p",
        "no:randomly",
        "-k",
        "not baseline",
        "--pc-report",
        "out",
    )
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(
        [
            "*= pipeline-checks summary =*",
            "*= pipeline-checks durations =*",
            "good: *s (training run *s, checks *s)",
            "*s *%  run    fit: first step (trace)",
            "suite: *s over 1 pipeline (training runs *s, checks *s)",
            "wrote *out/report.json",
        ]
    )
    parsed = parse(result.outlines)
    assert list(parsed) == ["good"]
    assert_adds_up(parsed["good"])
    report = json.loads((project.path / "out" / "report.json").read_text())["durations"]
    good = report["pipelines"]["good"]
    assert list(good["checks"]) == FAMILIES and list(good["run"]["phases"])[: len(RUN_PHASES)] == RUN_PHASES
    assert abs(sum(good["run"]["phases"].values()) - good["run"]["total"]) < 1e-6
    assert good["total"] == pytest.approx(good["run"]["total"] + sum(good["checks"].values()))


def test_without_the_flag_there_is_no_section_and_no_durations_in_the_report(project):
    declare(project, "good")
    result = project.runpytest(
        *SUITE_ONLY,
        "-k",
        "labels",
        "--pc-report",
        "out",
    )
    assert result.parseoutcomes()["passed"] == 1
    result.stdout.fnmatch_lines(["*= pipeline-checks summary =*"])
    assert durations.TITLE not in result.stdout.str()
    assert "durations" not in json.loads((project.path / "out" / "report.json").read_text())


def test_under_xdist_the_controller_prints_every_worker_s_durations(project):
    pytest.importorskip("xdist")
    declare(project, "two")
    result = project.runpytest_subprocess(
        "-n",
        "2",
        "--pipeline-checks",
        "--pc-suite-only",
        "--pc-durations",
        "-p",
        "no:randomly",
        "-k",
        "not baseline",
    )
    result.assert_outcomes(passed=18)
    parsed = parse(result.outlines)
    assert sorted(parsed) == ["first", "second"]
    for pipeline in parsed.values():
        assert_adds_up(pipeline)
    result.stdout.fnmatch_lines(["suite: *s over 2 pipelines (training runs *s, checks *s)"])


def test_timings_split_a_fit_at_its_first_step_and_put_the_rest_in_other():
    timings = Timings()
    with timings.timed(phases.READ_DATA):
        time.sleep(0.01)
    with timings.timed_fit():
        time.sleep(0.01)
        timings.step_ended()
        time.sleep(0.01)
        timings.step_ended()  # only the first step ends the first step
        time.sleep(0.01)
    assert list(timings.phases) == [
        phases.READ_DATA,
        phases.FIRST_STEP,
        phases.REMAINING_STEPS,
    ]
    assert timings.phases[phases.FIRST_STEP] < timings.phases[phases.REMAINING_STEPS]
    with timings.timed_fit():  # no step: a custom loop, or a fit that raised first
        pass
    assert phases.FIT in timings.phases
    timings.total = sum(timings.phases.values()) + 0.5
    plain = timings.to_dict()
    assert plain["phases"][phases.OTHER] == pytest.approx(0.5)
    assert sum(plain["phases"].values()) == pytest.approx(plain["total"])


def test_lines_sum_entries_per_pipeline_and_keep_the_run_apart_from_the_checks():
    run = {"phases": {phases.READ_DATA: 0.5, phases.FIRST_STEP: 1.5}, "total": 2.0}
    entries = [
        {"pipeline": "a", "check": "agreement", "seconds": 1.0, "run": run},
        {"pipeline": "a", "check": "labels", "seconds": 0.5, "run": None},
        {"pipeline": "b", "check": "labels", "seconds": 0.25, "run": None},
    ]
    assert durations.lines(entries) == [
        "a: 3.50s (training run 2.00s, checks 1.50s)",
        "    0.50s  14.3%  run    read data",
        "    1.50s  42.9%  run    fit: first step (trace)",
        "    1.00s  28.6%  check  agreement",
        "    0.50s  14.3%  check  labels",
        "b: 0.25s (training run 0.00s, checks 0.25s)",
        "    0.25s 100.0%  check  labels",
        "suite: 3.75s over 2 pipelines (training runs 2.00s, checks 1.75s)",
    ]
    assert durations.report(entries)["total"] == pytest.approx(3.75)
