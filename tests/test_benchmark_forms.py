"""A benchmark's smoke form runs what its timed form runs, only smaller.

CI runs the benchmarks only in their smoke form (`--benchmark-disable`, the default), so a
timed form that runs other tests than its smoke form can break unseen: the speedup benchmark's
smoke form once kept only the labels checks of its subprocess suite, and its timed form failed
on test_baseline. This runs the benchmark (a copy, under another module name) in both forms,
with every suite subprocess it starts replaced by that command's `--collect-only`: nothing is
trained, and each form's selections are compared.
"""

import re
import subprocess
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# benchmarks whose cases run a pytest suite in a subprocess
SUITE_BENCHMARKS = ["test_xdist_speedup.py"]
SUITE_TESTS = 10  # the nine checks and test_baseline, per pipeline


def collected(command: list[str], cwd, real_run) -> tuple[str, ...]:
    """The test ids `command` would run: its own arguments, without workers, collected only."""
    kept = [argument for argument in command if argument != "-q"]
    if "-n" in kept:
        del kept[kept.index("-n") : kept.index("-n") + 2]  # xdist spreads the tests; it selects none
    done = real_run([*kept, "--collect-only", "-q"], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tuple(sorted(line for line in done.stdout.splitlines() if "::" in line))


@pytest.fixture
def suite_selections(monkeypatch):
    """Every suite subprocess the benchmark starts answers at once, and its selection is recorded."""
    real_run, selections, cache = subprocess.run, [], {}

    def run(command, *args, cwd=None, **kwargs):
        if not (isinstance(command, list) and command[1:4] == ["-m", "pytest", "--pipeline-checks"]):
            return real_run(command, *args, cwd=cwd, **kwargs)
        # The pipelines declared and the arguments that select: one collection for each pair.
        key = (Path(cwd, "my_pipelines.py").read_text(), tuple(a for a in command if a != "--pc-update-baselines"))
        if key not in cache:
            cache[key] = collected([a for a in command if a != "--pc-update-baselines"], cwd, real_run)
        selections.append(cache[key])
        return subprocess.CompletedProcess(command, 0, stdout="pipeline-checks summary\n", stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    return selections


@pytest.mark.parametrize("benchmark_file", SUITE_BENCHMARKS)
def test_smoke_and_timed_forms_select_the_same_suite_tests(pytester, suite_selections, benchmark_file):
    pytest.importorskip("xdist")
    pytester.makeini("[pytest]\nmarkers =\n    slow: takes long\n")
    # Another module name: the benchmark itself may be imported in this process already.
    pytester.makepyfile(**{f"test_copy_of_{Path(benchmark_file).stem}": (BENCHMARKS / benchmark_file).read_text()})
    forms = {}
    for form, flag in [("smoke", "--benchmark-disable"), ("timed", "--benchmark-enable")]:
        result = pytester.runpytest_inprocess(flag, "-p", "no:randomly", "-p", "no:cacheprovider", "-q")
        assert result.ret == 0, "\n".join(result.outlines[-30:])
        forms[form], suite_selections[:] = list(suite_selections), []

    smoke, timed = set(forms["smoke"]), set(forms["timed"])
    only_timed = sorted({test_id for selection in timed for test_id in selection} - {i for s in smoke for i in s})
    assert smoke == timed, f"{benchmark_file}: only its timed form runs {only_timed}" if only_timed else (smoke, timed)
    assert len(smoke) == 1, f"the suite runs differ in what they select: {sorted(smoke)}"
    (selection,) = smoke
    pipelines = {re.search(r"\[(.*)\]$", test_id).group(1) for test_id in selection}
    assert len(selection) == SUITE_TESTS * len(pipelines), selection
    assert {f"test_baseline[{name}]" for name in pipelines} <= {test_id.split("::")[-1] for test_id in selection}
