"""A pipeline built under `keras.distribution.DataParallel` (Keras 3 on JAX) trains and is checked inside it.

JAX fixes its devices when it starts, so each case runs in a child process (`distributed_jax_cases.py`)
with `XLA_FLAGS=--xla_force_host_platform_device_count=N`: N host CPU devices, no GPU needed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_checks.checks import FAMILIES
from pipeline_checks.model import compat

TIMEOUT = 600  # seconds; the nine checks on the small CNN take about half a minute here

pytestmark = pytest.mark.skipif(
    compat.backend() != "jax", reason="keras.distribution.DataParallel is tested on the JAX backend"
)


def run_case(call: str, devices: int) -> dict[str, str]:
    """Run `distributed_jax_cases.<call>` in a child process on `devices` host CPU devices; its `RESULT: ` lines."""
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), tests) if p)
    flags = " ".join([os.environ.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={devices}"]).strip()
    done = subprocess.run(
        [sys.executable, "-c", f"import distributed_jax_cases; distributed_jax_cases.{call}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "jax", "XLA_FLAGS": flags},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.removeprefix("RESULT: ") for line in done.stdout.splitlines() if line.startswith("RESULT: ")]
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
