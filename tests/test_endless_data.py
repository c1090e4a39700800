"""No data source hangs the gate: endless data is read for steps_per_epoch batches, or refused at MAX_IMAGES.

Each case runs in a child process (`endless_cases.py`) under a timeout, and its watchdog ends
it past 2 GB, so a read without bound fails the test instead of hanging it or filling memory.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 300  # seconds: each case takes about 10 s, most of it importing TensorFlow
CAP_HIT = (
    "Pipeline 'endless': data raised ValueError: data gave more than 2,000 images; the checks read at most 2,000 "
    "(pipeline_checks.pipelines.bounded_read.MAX_IMAGES): if it never ends (.repeat(), from_generator, a Python "
    "generator), set fit_kwargs steps_per_epoch and the checks read that many batches"
)


def results_of(case: str) -> dict[str, str]:
    """The `RESULT: label: outcome` lines the case prints, by label; fails on a timeout or another exit."""
    tests = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), tests) if p)  # a PYTHONPATH given stays first
    try:
        done = subprocess.run(
            [sys.executable, "-c", f"import endless_cases; endless_cases.main({case!r})"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, "PYTHONPATH": path},
            cwd=tests,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child
        pytest.fail(f"{case} did not end within {TIMEOUT} s: a read of endless data without bound")
    lines = re.findall(r"^RESULT: (.*)$", done.stdout, flags=re.MULTILINE)
    assert done.returncode == 0, f"{case} exited {done.returncode}: {lines}\n{done.stderr[-2000:]}"
    return dict(line.split(": ", 1) for line in lines)


def test_a_repeated_dataset_with_steps_per_epoch_is_replayed_one_epoch_at_a_time():
    results = results_of("repeated-datasets")
    for label in ("batch-repeat", "filter-repeat"):
        assert results[label] == (
            "two runs from seed 0 gave bitwise-identical weights (14 variables) and metrics after one epoch"
        )
    assert results["train-dataset-repeat"] == "12"  # one pass of the raw images through train_dataset


def test_an_endless_from_generator_dataset_is_read_for_steps_per_epoch_or_refused():
    results = results_of("endless-generator-dataset")
    assert results["with-steps"] == "12"  # 3 batches of 4
    assert results["without-steps"].startswith(f"PipelineRunError: {CAP_HIT}")


def test_an_endless_python_generator_is_read_for_steps_per_epoch_or_refused():
    results = results_of("endless-python-generator")
    assert results["with-steps"] == "12"
    assert results["without-steps"].startswith(f"PipelineRunError: {CAP_HIT}")
