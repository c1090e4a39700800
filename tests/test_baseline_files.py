"""The suite's test_baseline as a project meets it: written once, compared, refreshed, configured."""

import pytest
from helpers.projects import pipelines_module

from pipeline_checks.cli.main import pytest_arguments

PIPELINES = pipelines_module(
    """
    import functools


    def pipeline(name, rate):
        return Pipeline(
            name=name,
            build_model=functools.partial(compiled, rate),
            data=PHOTOS,
            preprocess_train=lambda images: images / np.float32(255),
            fit_kwargs={"epochs": 6, "batch_size": 12},
        )


    def good():
        return pipeline("good", 0.01)


    def good_with_rate_doubled():  # the same pipeline after a change: its name, and so its baseline, stay
        return pipeline("good", 0.02)


    def other():
        return pipeline("other", 0.005)
"""
)
BASELINE = ".pipeline-checks/baselines/good.{key}.yml"
ONLY_BASELINE = ("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-k", "baseline")


@pytest.fixture
def project(pytester):
    pytester.makepyfile(my_pipelines=PIPELINES)
    pytester.syspathinsert()
    return pytester


@pytest.fixture
def key():
    from pipeline_checks.baselines.files import environment_key

    return environment_key()


def declare(pytester, *factories, extra=""):
    names = ", ".join(f'"my_pipelines:{factory}"' for factory in factories)
    pytester.makepyprojecttoml(f"[tool.pipeline_checks]\npipelines = [{names}]\n{extra}")


def test_a_missing_baseline_is_written_and_fails_once_then_the_same_run_passes(project, key):
    declare(project, "good")
    first = project.runpytest(*ONLY_BASELINE)
    first.assert_outcomes(failed=1, deselected=9)
    first.stdout.fnmatch_lines([f"*no baseline yet; this run's figures were written to {BASELINE.format(key=key)}*"])
    written = (project.path / BASELINE.format(key=key)).read_text()
    assert written.startswith("# pipeline-checks baseline of pipeline 'good'") and "loss.epoch_6:" in written
    project.runpytest(*ONLY_BASELINE).assert_outcomes(passed=1, deselected=9)


def test_a_change_fails_with_a_table_and_the_command_that_refreshes_it(project, key):
    declare(project, "good")
    project.runpytest(*ONLY_BASELINE, "--pc-update-baselines").assert_outcomes(passed=1, deselected=9)
    declare(project, "good_with_rate_doubled")
    changed = project.runpytest(*ONLY_BASELINE)
    changed.assert_outcomes(failed=1, deselected=9)
    changed.stdout.fnmatch_lines(
        [
            "*figures moved from the baseline: loss.epoch_2*",
            f"*Baseline {BASELINE.format(key=key)} ({key}, seed 0, recorded on backend *",
            "*figure * baseline * now * difference * tolerance",
            "*loss.epoch_2 * relative 0.01",
            '*pytest --pipeline-checks --pc-update-baselines -k "[[]good[]]"',
            "*baseline * FAILED * figures moved: loss.epoch_2*",
        ]
    )
    refreshed = project.runpytest(*ONLY_BASELINE, "--pc-update-baselines")
    refreshed.assert_outcomes(passed=1, deselected=9)
    refreshed.stdout.fnmatch_lines(["*baseline * passed * written, * figures*"])
    project.runpytest(*ONLY_BASELINE).assert_outcomes(passed=1, deselected=9)


def test_pytest_regressions_force_regen_rewrites_and_fails_and_regen_all_passes(project, key):
    declare(project, "good")
    project.runpytest(*ONLY_BASELINE, "--pc-update-baselines")
    before = (project.path / BASELINE.format(key=key)).read_text()
    declare(project, "good_with_rate_doubled")
    regenerated = project.runpytest(*ONLY_BASELINE, "--force-regen")
    regenerated.assert_outcomes(failed=1, deselected=9)
    regenerated.stdout.fnmatch_lines(["*--force-regen rewrote*"])
    after = (project.path / BASELINE.format(key=key)).read_text()
    assert after != before
    project.runpytest(*ONLY_BASELINE).assert_outcomes(passed=1, deselected=9)
    declare(project, "good")
    project.runpytest(*ONLY_BASELINE, "--regen-all").assert_outcomes(passed=1, deselected=9)
    assert (project.path / BASELINE.format(key=key)).read_text() == before


def test_the_directory_tolerances_and_skip_come_from_pyproject(project, key):
    declare(project, "good", extra='baseline_dir = "ci/baselines"\n')
    project.runpytest(*ONLY_BASELINE).assert_outcomes(failed=1, deselected=9)
    assert (project.path / f"ci/baselines/good.{key}.yml").is_file()
    tolerant = (
        "[tool.pipeline_checks.pipeline.good]\n"
        'baseline = {"loss.*" = {relative = 10}, "*.loss" = {relative = 10}, "evaluate.*" = {absolute = 1}, '
        '"predictions.*" = {absolute = 10}, "target_epoch" = {absolute = 10}}\n'
    )
    declare(project, "good_with_rate_doubled", extra='baseline_dir = "ci/baselines"\n' + tolerant)
    project.runpytest(*ONLY_BASELINE).assert_outcomes(passed=1, deselected=9)
    declare(
        project,
        "good_with_rate_doubled",
        extra='[tool.pipeline_checks.pipeline.good]\nskip = {baseline = "retrained weekly"}\n',
    )
    skipped = project.runpytest(*ONLY_BASELINE, "-rs")
    skipped.assert_outcomes(skipped=1, deselected=9)
    skipped.stdout.fnmatch_lines(["*retrained weekly (pyproject.toml*skip.baseline)*"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            'baseline_tolerances = {"loss.*" = 0.1}\n',
            "*Invalid pyproject.toml [[]tool.pipeline_checks[]] baseline_tolerances 'loss.*' = 0.1: expected a table "
            "with 'absolute' and/or 'relative'*",
        ),
        (
            '[tool.pipeline_checks.pipeline.good]\nbaseline = {"loss.*" = {relative = -1}}\n',
            "*baseline loss.*.relative must be a number >= 0; received*",
        ),
    ],
)
def test_invalid_tolerances_stop_the_run_naming_them(project, extra, message):
    declare(project, "good", extra=extra)
    result = project.runpytest(*ONLY_BASELINE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_under_xdist_each_baseline_takes_its_pipeline_s_check_numbers(project, key):
    pytest.importorskip("xdist")
    declare(project, "good", "other")
    args = ("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly", "-n", "2", "-k", "baseline or numerics")
    project.runpytest_subprocess(*args, "--pc-update-baselines").assert_outcomes(passed=4)
    for name in ("good", "other"):
        assert (
            "checks.numerics.last_loss:" in (project.path / f".pipeline-checks/baselines/{name}.{key}.yml").read_text()
        )
    project.runpytest_subprocess(*args).assert_outcomes(passed=4)


def test_the_console_script_refreshes_baselines():
    assert "--pc-update-baselines" in pytest_arguments(["--update-baselines"])
    assert pytest_arguments(["--baseline-dir", "ci/baselines"])[-2:] == ["--pc-baseline-dir", "ci/baselines"]


def test_a_built_in_pipeline_matches_the_baseline_shipped_for_this_environment(pytester, key):
    """CI compares: MobileNetV2's built-in run with its shipped file (none of the project's own), after
    every check has run, as `pipeline-checks` runs it: a figure a check adds must be in the shipped file
    (with `-k baseline` alone, the checks' figures are not compared, and a new one went unseen)."""
    from pipeline_checks.baselines.files import BUILTIN_DIRECTORY

    if not (BUILTIN_DIRECTORY / f"mobilenetv2.{key}.yml").is_file():
        pytest.skip(f"no baseline ships for {key} (docs/baselines.md, 'Built-in pipelines')")
    result = pytester.runpytest(
        "--pipeline-checks", "--pc-suite-only", "--pc-models", "MobileNetV2", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(["*baseline * passed * figures as in the baseline*"])
    assert not (pytester.path / ".pipeline-checks").exists()  # the shipped file is read, never written


def test_a_built_in_pipeline_without_a_baseline_for_this_environment_is_skipped_saying_so(pytester):
    # Inside the run's own session, where the plugin looks it up: nothing ships.
    pytester.makeconftest(
        "import pipeline_checks.pytest_plugin.baselines as b\nb.BUILTIN_DIRECTORY = b.Path('nothing-ships')\n"
    )
    result = pytester.runpytest(
        "--pipeline-checks",
        "--pc-suite-only",
        "--pc-models",
        "MobileNetV2",
        "-p",
        "no:randomly",
        "-k",
        "baseline",
        "-rs",
    )
    result.assert_outcomes(skipped=1, deselected=9)
    result.stdout.fnmatch_lines(
        [
            "*no baseline of the built-in pipeline 'mobilenetv2' ships for *-keras*; record one with "
            "--pc-update-baselines*"
        ]
    )


HOLDING_THE_LOCK = """
import sys
from pipeline_checks.baselines.writing import FileLock

FileLock(sys.argv[1]).acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes it, or kills this process
"""


def test_an_update_while_another_run_writes_the_file_fails_naming_it_then_goes_through(project, key):
    """Two updates at once left the folder mixed from both, silently; now the second is refused."""
    import subprocess
    import sys

    declare(project, "good")
    path = project.path / BASELINE.format(key=key)
    other_run = subprocess.Popen(
        [sys.executable, "-c", HOLDING_THE_LOCK, str(path)],
        cwd=project.path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other_run.stdout.readline().strip() == "held"
        refused = project.runpytest(*ONLY_BASELINE, "--pc-update-baselines")
        refused.assert_outcomes(failed=1, deselected=9)
        refused.stdout.fnmatch_lines(
            [
                f"*Cannot write the baseline {path}: another run (pid {other_run.pid} on *) "
                f"holds its lock .good.{key}.yml.lock until that session ends; let it finish*"
            ]
        )
        assert not path.exists()
        other_run.stdin.close()
        other_run.wait(timeout=30)
    finally:
        other_run.kill()
        other_run.stdout.close()
    project.runpytest(*ONLY_BASELINE, "--pc-update-baselines").assert_outcomes(passed=1, deselected=9)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # the lock went with the session


@pytest.mark.parametrize("folder", ["under a file", "read-only"])
def test_a_baseline_folder_the_run_cannot_write_fails_in_one_line_naming_the_file(project, key, folder):
    """It raised a PermissionError (or NotADirectoryError) traceback."""
    if folder == "under a file":
        (project.path / "notes.txt").write_text("not a folder\n")
        declare(project, "good", extra='baseline_dir = "notes.txt/baselines"\n')
        path, reason = project.path / f"notes.txt/baselines/good.{key}.yml", "Not a directory"
    else:
        declare(project, "good")
        path, reason = project.path / BASELINE.format(key=key), "Permission denied"
        path.parent.mkdir(parents=True)
        path.parent.chmod(0o555)
        try:
            (path.parent / "probe").touch()
            (path.parent / "probe").unlink()
            pytest.skip("this user (root?) writes into a read-only folder")
        except PermissionError:
            pass
    try:
        result = project.runpytest(*ONLY_BASELINE, "--pc-update-baselines")
    finally:
        if path.parent.is_dir():
            path.parent.chmod(0o755)
    result.assert_outcomes(failed=1, deselected=9)
    result.stdout.fnmatch_lines(
        [
            f"*Cannot write the baseline {path}: {reason}; expected a folder this run can write "
            f"({path.parent}): make it writable, or point pc_baseline_dir (--pc-baseline-dir) "
            "at one that is"
        ]
    )
    assert "Traceback" not in result.stdout.str() and "Error: [Errno" not in result.stdout.str()
