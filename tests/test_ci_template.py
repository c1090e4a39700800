"""docs/ci.md's GitHub Actions workflow: it parses, it matches tox.ini and the README, and its gate runs."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).parents[1]


def workflow() -> dict:
    page = (ROOT / "docs" / "ci.md").read_text()
    return yaml.safe_load(page.split("```yaml\n", 1)[1].split("```", 1)[0])


def expand(pattern: str) -> list[str]:
    """tox's brace factors: py311-tf{212,213} -> py311-tf212, py311-tf213."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [
        name
        for option in match.group(1).split(",")
        for name in expand(pattern[: match.start()] + option.strip() + pattern[match.end() :])
    ]


def tox_envs() -> list[str]:
    text = (ROOT / "tox.ini").read_text()
    block = text.split("env_list =", 1)[1].split("\n[", 1)[0].split("requires", 1)[0]
    return [env for line in block.split() for env in expand(line)]


def step(job: dict, name: str) -> dict:
    return next(s for s in job["steps"] if s.get("name") == name)


def gate_command() -> list[str]:
    return shlex.split(step(workflow()["jobs"]["gate"], "Check the pipelines")["run"])


def test_the_gate_runs_on_pull_requests_and_the_tox_matrix_as_parallel_jobs():
    flow = workflow()
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    matrix = flow["jobs"]["matrix"]
    assert matrix["strategy"]["matrix"]["env"] == tox_envs()
    assert matrix["strategy"]["fail-fast"] is False
    assert step(matrix, "Run ${{ matrix.env }}")["run"] == "tox -e ${{ matrix.env }}"


def test_every_job_caches_pip():
    for job in workflow()["jobs"].values():
        setup = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python"))
        assert setup["with"]["cache"] == "pip"


def test_the_gate_is_the_readme_s_command_with_parallel_workers_a_report_and_junit():
    readme = (ROOT / "README.md").read_text()
    readme_command = next(
        line.split("#", 1)[0].strip() for line in readme.splitlines() if line.startswith("pytest --pipeline-checks")
    )
    command = gate_command()
    assert " ".join(command[: len(readme_command.split())]) == readme_command
    added = command[len(readme_command.split()) :]
    assert added == ["-n", "2", "--pc-report=pipeline-checks-report", "--junitxml=pipeline-checks-report/junit.xml"]
    gate = workflow()["jobs"]["gate"]
    upload = step(gate, "Upload the report")
    assert upload["uses"].startswith("actions/upload-artifact") and upload["if"] == "always()"
    uploaded = upload["with"]["path"].split()
    assert {
        "pipeline-checks-report/report.json",
        "pipeline-checks-report/report.md",
        "pipeline-checks-report/*.png",
    } <= set(uploaded)
    assert step(gate, "Publish the summary")["run"] == 'cat pipeline-checks-report/report.md >> "$GITHUB_STEP_SUMMARY"'


def test_the_gate_command_and_the_summary_step_run(pytester):
    pytest.importorskip("xdist")
    from test_xdist import PIPELINES

    pytester.makepyfile(my_pipelines=PIPELINES)
    pytester.makepyprojecttoml('[tool.pipeline_checks]\npipelines = ["my_pipelines:two"]\n')
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    command = gate_command()
    assert command[0] == "pytest"
    # The workflow's command as it stands, on the labels check only (the cheap one), and no randomly.
    result = pytester.runpytest_subprocess(*command[1:], "-p", "no:randomly", "-k", "own or labels")
    result.assert_outcomes(passed=3)
    report = pytester.path / "pipeline-checks-report"
    assert (report / "report.json").is_file() and (report / "junit.xml").is_file()
    summary = pytester.path / "step-summary.md"
    publish = step(workflow()["jobs"]["gate"], "Publish the summary")["run"]
    subprocess.run(
        ["bash", "-c", publish], cwd=pytester.path, env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}, check=True
    )
    text = summary.read_text()
    assert "2 checks on 2 pipelines: all passed." in text and "| labels | passed |" in text
