"""pyproject.toml as a project writes it, and declared pipelines imported as `python -m pytest` would.

A misspelt table or a value of the wrong type must stop the run naming it, never run the
built-in pipelines in place of the project's, and a module at the project's root must be
found by the plugin and by the console script alike.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

NO_RANDOMLY = ("-p", "no:randomly")
COLLECT_SUITE = ("--pipeline-checks", "--pc-suite-only", "--co", "-q", *NO_RANDOMLY)
# A module at the project's root, as the project writes it: no sys.path entry made for it.
MYPIPES = """
    from pipeline_checks import Pipeline, make_tiny_images
    from pipeline_checks.testing.small_models import small_bn_cnn


    def good():
        return Pipeline(name="good", build_model=lambda: small_bn_cnn((8, 8, 3), classes=3),
                        data=make_tiny_images(classes=3, per_class=2, size=8))
"""


@pytest.fixture
def project(pytester, monkeypatch):
    """A project whose root holds mypipes.py and is not on sys.path (as under the console script)."""
    pytester.makepyfile(mypipes=MYPIPES)
    here = str(pytester.path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.curdir, here)])
    return pytester


@pytest.mark.parametrize(
    "pyproject, message",
    [
        (
            '[tool.pipeline-checks]\npipelines = ["mypipes:good"]\n',
            "ERROR: Invalid pyproject.toml [[]tool.pipeline-checks]: pipeline-checks reads [[]tool.pipeline_checks] "
            "(with an underscore)*",
        ),
        (
            '[tool]\npipeline_checks = ["mypipes:good"]\n',
            "ERROR: Invalid pyproject.toml [[]tool] pipeline_checks = [[]'mypipes:good']: expected a table*",
        ),
        (
            '[tool.pipeline_checks]\npipeline = ["mypipes:good"]\n',
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks] pipeline = [[]'mypipes:good']: expected tables "
            "named by pipeline*",
        ),
        (
            '[tool.pipeline_checks]\npipeline_s = ["mypipes:good"]\n',
            "ERROR: Unknown setting pipeline_s in pyproject.toml [[]tool.pipeline_checks]; did you mean pipelines*",
        ),
        (
            "[tool.pipeline_checks]\nmodels = 5\n",
            "ERROR: Invalid pyproject.toml [[]tool.pipeline_checks] models = 5: expected a comma-separated list of "
            "keras.applications "
            "names, or a list of them; received: 5 of type int",
        ),
    ],
    ids=["hyphenated-table", "tool-key", "singular-key", "near-miss-key", "models-int"],
)
def test_a_misspelt_or_mistyped_configuration_stops_the_run_naming_it(project, pyproject, message):
    project.makepyprojecttoml(pyproject)
    result = project.runpytest(*COLLECT_SUITE)  # collection only: today's main would train the built-in pipelines
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.no_fnmatch_line("*collected*")


@pytest.mark.parametrize("key, value", [("report", "5"), ("baseline_dir", "[]"), ("baseline_dir", "{a = 1}")])
def test_a_folder_setting_of_another_type_writes_no_folder(project, key, value):
    project.makepyprojecttoml(f'[tool.pipeline_checks]\npipelines = ["mypipes:good"]\n{key} = {value}\n')
    result = project.runpytest("--pipeline-checks", "--pc-suite-only", "-k", "labels", *NO_RANDOMLY)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: Invalid pyproject.toml [[]tool.pipeline_checks] {key} = *: expected a directory path, a string*"]
    )
    assert [p.name for p in project.path.iterdir() if p.is_dir() and p.name != "__pycache__"] == []


def test_an_unknown_key_warns_and_fails_under_strict_config(project):
    project.makepyprojecttoml('[tool.pipeline_checks]\ncolour = "red"\npipelines = ["mypipes:good"]\n')
    warned = project.runpytest(*COLLECT_SUITE)
    assert warned.ret == pytest.ExitCode.OK
    warned.stdout.fnmatch_lines(
        ["*PytestConfigWarning: Unknown setting colour in pyproject.toml [[]tool.pipeline_checks] (ignored)*"]
    )
    strict = project.runpytest(*COLLECT_SUITE, "--strict-config")
    assert strict.ret == pytest.ExitCode.USAGE_ERROR
    strict.stderr.fnmatch_lines(["ERROR: Unknown setting colour in pyproject.toml [[]tool.pipeline_checks] (ignored)*"])


def test_a_declared_module_at_the_project_root_is_imported_without_pythonpath(project):
    project.makepyprojecttoml('[tool.pipeline_checks]\npipelines = ["mypipes:good"]\n')
    result = project.runpytest(*COLLECT_SUITE)
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["pipeline-checks::test_labels[[]good]"])
    assert str(project.path) not in sys.path, "the rootdir is on the path only while the pipelines are imported"


def test_the_console_script_imports_a_module_at_the_project_root(project):
    script = Path(sys.executable).with_name("pipeline-checks")
    if not script.is_file():
        pytest.skip(f"no pipeline-checks console script beside {sys.executable}")
    result = subprocess.run(
        [str(script), "mypipes:good", "--", "--co", "-q"],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "<Function test_labels[good]>" in result.stdout
