"""The train_step_benchmark fixture as users meet it, and the regression gate on a baseline."""

import json
import re

import pytest

from pipeline_checks.pytest_plugin.benchmark import StepBenchmark

STEP_BENCHMARK = """
    import numpy as np

    def test_step(train_step_benchmark, keras_application):
        model, preprocess_input = keras_application("MobileNetV2", classes=2, alpha=0.35)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        x = preprocess_input(np.zeros((4, 32, 32, 3), "float32"))
        train_step_benchmark(model, x, np.array([0, 1, 0, 1]), rounds=3, warmup_rounds=1)
"""


def test_the_fixture_writes_the_fields_a_baseline_needs(pytester):
    pytester.makepyfile(STEP_BENCHMARK)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "out.json").read_text())
    info = report["benchmarks"][0]["extra_info"]
    assert {
        "images_per_second",
        "ms_per_step",
        "batch_size",
        "input_size",
        "precision_policy",
        "xla",
        "backend",
        "device",
        "keras_version",
        "tensorflow_version",
        "jax_version",
        "gflops_per_image",
        "achieved_tflops",
    } <= set(info)
    assert (info["batch_size"], info["input_size"], info["precision_policy"]) == (4, "32x32x3", "float32")
    assert info["images_per_second"] == pytest.approx(4 / report["benchmarks"][0]["stats"]["median"])
    assert report["machine_info"]["pipeline_checks_devices"] == [info["device"]]


@pytest.mark.parametrize(
    "argument, message",
    [
        ({"rounds": 0}, "rounds must be an integer of at least 1; received: rounds=0"),
        ({"warmup_rounds": -1}, "warmup_rounds must be an integer of at least 0; received: warmup_rounds=-1"),
        ({"rounds": 2.5}, "rounds must be an integer of at least 1; received: rounds=2.5"),
    ],
)
def test_bad_rounds_are_refused_before_anything_runs(argument, message):
    # The benchmark object is never touched: validation comes before tracing or timing.
    with pytest.raises(ValueError, match=re.escape(message)):
        StepBenchmark(benchmark=None)(model=None, x=None, y=None, **argument)


SLEEPER = """
    import os
    import time

    def test_step(benchmark):
        benchmark.pedantic(time.sleep, args=(float(os.environ["STEP_SECONDS"]),), rounds=5, iterations=1)
"""


def test_the_regression_gate_fails_a_slower_step_against_the_stored_baseline(pytester, monkeypatch):
    pytester.makepyfile(SLEEPER)
    storage = f"--benchmark-storage=file://{pytester.path / 'baselines'}"
    gate = ("--benchmark-compare", "--benchmark-compare-fail=median:15%", storage, "-p", "no:randomly")
    monkeypatch.setenv("STEP_SECONDS", "0.02")
    pytester.runpytest("--benchmark-autosave", storage, "-p", "no:randomly").assert_outcomes(passed=1)
    assert pytester.runpytest(*gate).ret == pytest.ExitCode.OK
    monkeypatch.setenv("STEP_SECONDS", "0.06")
    slower = pytester.runpytest(*gate)
    assert slower.ret != pytest.ExitCode.OK
    slower.stderr.fnmatch_lines(["*Performance has regressed*"])


def test_a_dist_mode_without_workers_leaves_the_benchmarks_on(pytester, monkeypatch):
    """This project's addopts say `--dist loadfile` (for -n runs); pytest-benchmark turns itself off
    whenever --dist is set, so without workers the plugin makes it "no"."""
    pytester.makepyfile(SLEEPER)
    monkeypatch.setenv("STEP_SECONDS", "0.001")
    result = pytester.runpytest(
        "--dist", "loadfile", "--benchmark-enable", "--benchmark-json=out.json", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=1)
    assert len(json.loads((pytester.path / "out.json").read_text())["benchmarks"]) == 1
