"""A pipeline built under `keras.distribution.DataParallel` (Keras 3 on JAX) trains and is checked inside it.

JAX fixes its devices when it starts, so each case runs in a child process (`distributed_jax_cases.py`)
with `XLA_FLAGS=--xla_force_host_platform_device_count=N`: N host CPU devices, no GPU needed.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import distributed_cases
import distributed_jax_cases
import pytest

from pipeline_checks.checks import FAMILIES
from pipeline_checks.model import compat

TIMEOUT = 600  # seconds; the nine checks on the small CNN take about half a minute here
MATRIX_TIMEOUT = 1200  # seconds; the matrix rows take a few minutes on 2 busy CPU cores

pytestmark = pytest.mark.skipif(
    compat.backend() != "jax", reason="keras.distribution.DataParallel is tested on the JAX backend"
)


def run_case(call: str, devices: int, timeout: float = TIMEOUT, stdout: list | None = None) -> dict[str, str]:
    """Run `distributed_jax_cases.<call>` in a child process on `devices` host CPU devices; its `RESULT: ` lines
    that are no JSON (the matrix rows' are read by `distributed_cases.judge` from the stdout appended to `stdout`)."""
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), tests) if p)
    flags = " ".join([os.environ.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={devices}"]).strip()
    done = subprocess.run(
        [sys.executable, "-c", f"import distributed_jax_cases; distributed_jax_cases.{call}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "jax", "XLA_FLAGS": flags},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if stdout is not None:
        stdout.append(done.stdout)
    lines = [
        line.removeprefix("RESULT: ")
        for line in done.stdout.splitlines()
        if line.startswith("RESULT: ") and not line.startswith("RESULT: {")
    ]
    outcomes = dict(line.split(": ", 1) for line in lines)
    assert outcomes.pop("devices") == str(devices), done.stderr[-3000:]
    return outcomes


def test_every_check_passes_a_correct_pipeline_under_data_parallel():
    outcomes = run_case("main()", devices=2)
    assert sorted(outcomes) == sorted(FAMILIES)
    assert all(outcome == "passed" for outcome in outcomes.values()), outcomes


def test_data_parallel_batchnorm_normalizes_over_the_global_batch():
    # One example on each of 4 devices: per-device statistics would leave a moving variance of 0.
    outcomes = run_case("batchnorm_statistics()", devices=4)
    assert "'batch': 4" in outcomes["moving mean sharding"], outcomes
    assert float(outcomes["moving mean"]) == pytest.approx(float(outcomes["global mean"]), abs=1e-5)
    assert float(outcomes["moving variance"]) == pytest.approx(float(outcomes["global variance"]), rel=1e-4)


def test_agreement_passes_the_per_replica_batchnorm_row_under_data_parallel():
    # MirroredStrategy's per-replica row fails agreement; the same model and batch under DataParallel
    # is one SPMD program over the global batch, so it is clean by construction.
    outcomes = run_case("per_device_batchnorm()", devices=4)
    assert outcomes["agreement"] == "passed", outcomes


@pytest.fixture(scope="module")
def data_parallel_matrix():
    """The rows of `distributed_jax_cases.data_parallel_rows()` under DataParallel over two host CPU devices, the
    nine checks on each, in one child process: row id -> its problems (see `distributed_cases.judge`)."""
    start, stdout = time.perf_counter(), []
    run_case("matrix_rows_under_data_parallel()", devices=2, timeout=MATRIX_TIMEOUT, stdout=stdout)
    verdicts = distributed_cases.judge(
        distributed_jax_cases.data_parallel_rows(), distributed_jax_cases.data_parallel_differences(), stdout[0]
    )
    seconds = verdicts.pop("seconds")
    print(f"matrix rows under DataParallel: {time.perf_counter() - start:.0f} s; by row: {seconds}")
    return verdicts


@pytest.mark.parametrize("row", distributed_jax_cases.data_parallel_rows())
def test_a_matrix_row_fails_exactly_its_checks_under_data_parallel(data_parallel_matrix, row):
    (case,) = distributed_cases.matrix_rows([row])
    problems = data_parallel_matrix[case.id]
    assert not problems, "\n".join(problems)


def test_the_data_parallel_rows_catch_every_check_family():
    rows, differences = distributed_jax_cases.data_parallel_rows(), distributed_jax_cases.data_parallel_differences()
    caught = distributed_cases.families_caught(rows, differences)
    assert caught == set(FAMILIES), sorted(set(FAMILIES) - caught)
