"""Wall time of the built-in suite on two declared pipelines: serial against `pytest -n 2`.

With pytest-xdist, the plugin sends every check of one pipeline to one worker, so each
pipeline trains once, on its own core. `pytest benchmarks/test_xdist_speedup.py
--benchmark-enable` times both runs (each a fresh `pytest --pipeline-checks --pc-suite-only`
subprocess, Python and TensorFlow start-up included) and records `speedup_vs_serial` in the
2-worker case's extra_info; docs/ci.md has the measured numbers. In the default run each case
runs once as a smoke test, on the labels check only.
"""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("xdist")

ROUNDS = 3
SERIAL_KEY = pytest.StashKey[float]()

# The README's declared pipeline (with the installed Keras), twice: MobileNetV2 (weights=None) on 12 photographs at 32x32.
PIPELINES = textwrap.dedent(
    """
    from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm
    from pipeline_checks.model import compat

    keras = compat.keras()  # Keras 3, or tf.keras on the Keras 2 envs

    def build():
        base = keras.applications.MobileNetV2(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
        model = keras.Sequential([base, keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def mobilenet(name):
        return Pipeline(name=name, build_model=build, data=make_tiny_images(3, per_class=4, kind="photos"),
                        preprocess_train=keras.applications.mobilenet_v2.preprocess_input, application="MobileNetV2",
                        fit_kwargs={"epochs": 10, "batch_size": 12}, after_fit=lambda m, x: recalibrate_batchnorm(m, x, batch_size=12))

    def two():
        return [mobilenet("mobilenet-a"), mobilenet("mobilenet-b")]
    """
)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "my_pipelines.py").write_text(PIPELINES)
    (tmp_path / "pyproject.toml").write_text('[tool.pipeline_checks]\npipelines = ["my_pipelines:two"]\n')
    return tmp_path


def run_suite(project, workers: int, keyword: str | None) -> None:
    command = [sys.executable, "-m", "pytest", "--pipeline-checks", "--pc-suite-only", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    if workers > 1:
        command += ["-n", str(workers)]
    if keyword:
        command += ["-k", keyword]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pipeline-checks summary" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "two-workers"])
def test_suite_wall_time(benchmark, request, project, workers):
    keyword = None if not benchmark.disabled else "labels"
    benchmark.group = "xdist speedup: 2 pipelines x 9 checks"
    benchmark.pedantic(run_suite, args=(project, workers, keyword), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    if benchmark.disabled:
        return
    if workers == 1:
        request.config.stash[SERIAL_KEY] = benchmark.stats.stats.median
    elif SERIAL_KEY in request.config.stash:
        serial = request.config.stash[SERIAL_KEY]
        benchmark.extra_info.update(serial_median_s=serial, speedup_vs_serial=serial / benchmark.stats.stats.median)
