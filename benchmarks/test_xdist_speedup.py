"""Wall time of the built-in suite on two declared pipelines: serial against `pytest -n 2`.

With pytest-xdist, the plugin sends every check of one pipeline to one worker, so each
pipeline trains once, on its own core. `pytest benchmarks/test_xdist_speedup.py
--benchmark-enable` times both runs (each a fresh `pytest --pipeline-checks --pc-suite-only`
subprocess, Python and TensorFlow start-up included) and records `speedup_vs_serial` in the
2-worker case's extra_info; docs/ci.md has the measured numbers.

Both arms run the whole suite, the nine checks and test_baseline, against baselines recorded
once before either is timed (a missing baseline fails its test once), so they time the same
work. The default run (`--benchmark-disable`) is the smoke form: the same suite and commands
on two small CNNs, one round each; the timed form runs MobileNetV2 twice, `ROUNDS` rounds.
tests/test_benchmark_forms.py checks that both forms select the same tests of the suite.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("xdist")

ROUNDS = 3
SERIAL_KEY = pytest.StashKey[float]()
PROJECTS_KEY = pytest.StashKey[dict]()
# Set in a pytest-xdist worker: a suite started from one (CI's `pytest -n 2`) must not think it is one.
XDIST_WORKER_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")

# Two pipelines of one model, named alike in both forms so that both collect the same test ids.
# timed: the README's declared pipeline (with the installed Keras), MobileNetV2 (weights=None) on
# 12 photographs at 32x32; smoke: the small BatchNorm CNN of benchmarks/test_suite_cost.py.
PIPELINES = textwrap.dedent(
    """
    import numpy as np
    from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm
    from pipeline_checks.model import compat
    from pipeline_checks.testing.small_models import small_bn_cnn

    keras = compat.keras()  # Keras 3, or tf.keras on the Keras 2 envs

    def build_mobilenet():
        base = keras.applications.MobileNetV2(
            weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3)
        )
        model = keras.Sequential([base, keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def mobilenet(name):
        return Pipeline(
            name=name, build_model=build_mobilenet, data=make_tiny_images(3, per_class=4, kind="photos"),
            preprocess_train=keras.applications.mobilenet_v2.preprocess_input, application="MobileNetV2",
            fit_kwargs={"epochs": 10, "batch_size": 12},
            after_fit=lambda m, x: recalibrate_batchnorm(m, x, batch_size=12),
        )

    def build_cnn():
        model = small_bn_cnn((16, 16, 3), classes=3)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    def small_cnn(name):
        return Pipeline(
            name=name, build_model=build_cnn, data=make_tiny_images(classes=3, per_class=4, size=16, seed=0),
            preprocess_train=lambda images: images / np.float32(255), fit_kwargs={"epochs": 15, "batch_size": 4},
            after_fit=lambda m, x: recalibrate_batchnorm(m, x, batch_size=4),
        )

    def two():
        return [PIPELINE("pipeline-a"), PIPELINE("pipeline-b")]
    """
)
FORMS = {"smoke": "small_cnn", "timed": "mobilenet"}


def form_of(benchmark) -> str:
    return "smoke" if benchmark.disabled else "timed"


def write_project(directory: Path, form: str) -> Path:
    """A project that declares the form's two pipelines."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "my_pipelines.py").write_text(PIPELINES + f"\nPIPELINE = {FORMS[form]}\n")
    (directory / "pyproject.toml").write_text('[tool.pipeline_checks]\npipelines = ["my_pipelines:two"]\n')
    return directory


def suite_command(workers: int, *extra: str) -> list[str]:
    """The suite's command line, the same in both forms: the whole suite, baseline included."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pipeline-checks",
        "--pc-suite-only",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        *extra,
    ]
    return command + (["-n", str(workers)] if workers > 1 else [])


def run_suite(project: Path, workers: int, *extra: str) -> None:
    environment = {name: value for name, value in os.environ.items() if name not in XDIST_WORKER_VARIABLES}
    done = subprocess.run(
        suite_command(workers, *extra),
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=environment,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pipeline-checks summary" in done.stdout


def recorded_project(request, form: str) -> Path:
    """The form's project with its baselines recorded, once per session for both cases (untimed)."""
    projects = request.config.stash.setdefault(PROJECTS_KEY, {})
    if form not in projects:
        project = write_project(request.getfixturevalue("tmp_path_factory").mktemp(f"xdist-{form}"), form)
        run_suite(project, 1, "--pc-update-baselines")
        projects[form] = project
    return projects[form]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "two-workers"])
def test_suite_wall_time(benchmark, request, workers):
    project = recorded_project(request, form_of(benchmark))
    benchmark.group = "xdist speedup: 2 pipelines x 10 tests"
    benchmark.pedantic(run_suite, args=(project, workers), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    if benchmark.disabled:
        return
    if workers == 1:
        request.config.stash[SERIAL_KEY] = benchmark.stats.stats.median
    elif SERIAL_KEY in request.config.stash:
        serial = request.config.stash[SERIAL_KEY]
        benchmark.extra_info.update(serial_median_s=serial, speedup_vs_serial=serial / benchmark.stats.stats.median)
