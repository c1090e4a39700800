"""A pipeline built under a distribution strategy trains and is checked inside it.

TensorFlow's logical devices are fixed when it starts, so the case runs in a child process
(`distributed_cases.py`) over two logical CPU devices: no GPU is needed.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import distributed_cases
import pytest

from pipeline_checks.checks import FAMILIES
from pipeline_checks.model import compat

TIMEOUT = 600  # seconds; the nine checks on the small CNN take about a minute here
MATRIX_TIMEOUT = 1200  # seconds; the matrix rows take about 4 minutes on 2 busy CPU cores

pytestmark = [
    pytest.mark.skipif(compat.backend() != "tensorflow", reason="tf.distribute is TensorFlow's"),
    # tf.keras updates its compiled metrics only in a replica context, and the checks' own passes run
    # in the cross-replica one ("SyncOnReadVariable does not support assign_add"): not supported yet.
    pytest.mark.skipif(not compat.is_keras3(), reason="the checks run under a strategy on Keras 3 only"),
]


def run_case(call: str, timeout: float = TIMEOUT) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `distributed_cases.<call>` in a child process; its `RESULT: ` lines, prefix removed."""
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), tests) if p)
    done = subprocess.run(
        [sys.executable, "-c", f"import distributed_cases; distributed_cases.{call}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done, [line.removeprefix("RESULT: ") for line in done.stdout.splitlines() if line.startswith("RESULT: ")]


def test_every_check_passes_a_correct_pipeline_under_mirrored_strategy():
    done, lines = run_case("main(2)")
    outcomes = dict(line.split(": ", 1) for line in lines)
    assert sorted(outcomes) == sorted(FAMILIES), done.stderr[-3000:]
    assert all(outcome == "passed" for outcome in outcomes.values()), "\n".join(lines)


def test_agreement_names_per_replica_batchnorm_and_passes_its_synchronized_twin():
    _, lines = run_case("per_replica_batchnorm(4)")
    outcomes = dict(line.split(": ", 1) for line in lines)
    assert outcomes["synchronized"] == "passed"
    # One image per replica: fit scores its own per-replica normalization; evaluate and train-mode do not.
    assert outcomes["per-replica"].startswith("FAILED: Gap: evaluate vs"), outcomes["per-replica"]
    assert "Cause: per-replica BatchNormalization statistics: fit ran on 4 replicas" in outcomes["per-replica"]
    assert "share of 1 image (a global batch of 4)" in outcomes["per-replica"]
    assert "BatchNormalization(synchronized=True)" in outcomes["per-replica"]


@pytest.fixture(scope="module")
def mirrored_matrix():
    """The detection-matrix rows of `distributed_cases.MIRRORED_ROWS` under MirroredStrategy over two logical
    CPUs, the nine checks on each, in one child process: row id -> its problems (see `distributed_cases.judge`)."""
    start = time.perf_counter()
    done, _ = run_case("matrix_rows_under_mirrored_strategy(2)", timeout=MATRIX_TIMEOUT)
    verdicts = distributed_cases.judge(
        distributed_cases.MIRRORED_ROWS, distributed_cases.mirrored_differences(), done.stdout
    )
    seconds = verdicts.pop("seconds")
    print(f"matrix rows under MirroredStrategy: {time.perf_counter() - start:.0f} s; by row: {seconds}")
    return verdicts


@pytest.mark.parametrize("row", distributed_cases.MIRRORED_ROWS)
def test_a_matrix_row_fails_exactly_its_checks_under_mirrored_strategy(mirrored_matrix, row):
    (case,) = distributed_cases.matrix_rows([row])
    problems = mirrored_matrix[case.id]
    assert not problems, "\n".join(problems)


def test_the_mirrored_rows_catch_every_check_family():
    caught = distributed_cases.families_caught(
        distributed_cases.MIRRORED_ROWS, distributed_cases.mirrored_differences()
    )
    assert caught == set(FAMILIES), sorted(set(FAMILIES) - caught)
