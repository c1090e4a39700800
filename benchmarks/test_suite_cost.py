"""What the whole gate costs against the floor: one bare fit + evaluate of the same pipeline.

The nine checks and the baseline's fingerprint share one training run per pipeline, so the
gate should cost close to one fit and one evaluate plus cheap measurements. Each case times
the bare `fit` + `evaluate` (build included) and the gate (build, run, nine checks,
fingerprint), each round in a fresh Python process, as CI runs them: JAX compiles every op
it runs eagerly on first use, and a warm process would hide that. On the small CNN and on
each built-in application (`slow`), on whichever backend runs the benchmarks (the tox envs
py311-keras3-jax and py311-keras3-torch for JAX and torch).

`pytest benchmarks/test_suite_cost.py --benchmark-enable` records, in the gate's extra_info,
the seconds each measured inside its process (imports left out) and their ratio,
`ratio_to_bare_fit_evaluate` (the target is 1.25). In the default run the small CNN runs
once, as a smoke test, and the applications are skipped. The built-in suite's pipelines of other
kinds (`photos-regression`) are timed too: `test_other_kinds_grow_the_built_in_suite` records how
much they add to the default suite's gate time, `growth_from_other_kinds` (the target is at most 0.2).
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm
from pipeline_checks.baselines.fingerprint import fingerprint
from pipeline_checks.checks import all_checks
from pipeline_checks.model import compat
from pipeline_checks.pytest_plugin.durations import measured
from pipeline_checks.run.memory import older_objects_left_out
from pipeline_checks.run.training import forget_shared_runs, shared_run
from pipeline_checks.scenarios.builtin import application_pipeline, regression_pipeline
from pipeline_checks.testing.small_models import small_bn_cnn

FLOOR_KEY = pytest.StashKey[dict]()
GATE_KEY = pytest.StashKey[dict]()
APPLICATIONS = ("ResNet50", "InceptionV3", "MobileNetV2")
OTHER_KINDS = ("photos-regression",)  # the default suite's pipelines besides the applications
CASES = (
    [pytest.param("small-cnn", id="small-cnn")]
    + [pytest.param(name, id=name.lower(), marks=pytest.mark.slow) for name in APPLICATIONS]
    + [pytest.param(name, id=name, marks=pytest.mark.slow) for name in OTHER_KINDS]
)


def compiled_cnn():
    model = small_bn_cnn((16, 16, 3), classes=3)
    model.compile(
        optimizer=compat.keras().optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def small_pipeline() -> Pipeline:
    return Pipeline(
        name="small-cnn",
        build_model=compiled_cnn,
        data=make_tiny_images(classes=3, per_class=4, size=16, seed=0),
        preprocess_train=lambda images: images / np.float32(255),
        fit_kwargs={"epochs": 15, "batch_size": 4},
        after_fit=lambda model, x: recalibrate_batchnorm(model, x, batch_size=4),
    )


def pipeline_for(case: str) -> Pipeline:
    if case == "small-cnn":
        return small_pipeline()
    return regression_pipeline() if case == "photos-regression" else application_pipeline(case)


def bare_fit_and_evaluate(pipeline: Pipeline) -> dict:
    """Build, fit and evaluate as a plain training script does; return the seconds of each."""
    marks = [time.perf_counter()]
    compat.set_random_seed(0)
    raw = pipeline.raw_data()
    model = pipeline.fresh_model()
    marks.append(time.perf_counter())
    model.fit(pipeline.train_inputs(raw.images), pipeline.targets(raw), verbose=0, **pipeline.fit_kwargs)
    marks.append(time.perf_counter())
    model.evaluate(pipeline.infer_inputs(raw.images), pipeline.targets(raw), batch_size=pipeline.batch_size, verbose=0)
    marks.append(time.perf_counter())
    return {part: end - start for part, start, end in zip(("build", "fit", "evaluate"), marks, marks[1:])}


def every_check(pipeline: Pipeline) -> dict:
    """Run the gate; return its seconds by part: the training run's phases and each check's own work."""
    forget_shared_runs(pipeline)  # the gate trains the pipeline itself, as a fresh pytest session does
    parts, results = {}, []
    with older_objects_left_out():  # as the plugin does from a pipeline's first test to its last
        try:
            for name, check in all_checks().items():
                with measured(pipeline, 0) as measurement:
                    results.append(check(pipeline))
                parts[f"check {name}"] = measurement.seconds
                if measurement.run is not None:
                    parts.update({f"run {phase}": seconds for phase, seconds in measurement.run["phases"].items()})
            start = time.perf_counter()
            fingerprint(shared_run(pipeline), {result.name: result.numbers for result in results})
            parts["fingerprint"] = time.perf_counter() - start
        finally:
            forget_shared_runs(pipeline)
    failed = [str(result) for result in results if not result.passed]
    assert not failed, "\n".join(failed)  # a correct pipeline: a failing check would time the wrong thing
    return parts


def rounds(benchmark, case: str) -> int:
    if case == "small-cnn":
        return 3
    if benchmark.disabled:  # minutes per application; the suite's own tests run them in CI
        pytest.skip(f"{case} is timed only with --benchmark-enable")
    return 1


def in_fresh_process(what: str, case: str, inner: list) -> None:
    """Run `python test_suite_cost.py WHAT CASE` and keep what it measured inside: seconds, and parts."""
    done = subprocess.run(
        [sys.executable, __file__, what, case],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    inner.append(json.loads(done.stdout.strip().splitlines()[-1]))


def timed(benchmark, case: str, what: str) -> float:
    """The median round's inner seconds; its parts go to extra_info as `seconds_by_part`."""
    inner: list = []
    benchmark.group = f"suite cost: {case}"
    benchmark.pedantic(in_fresh_process, args=(what, case, inner), rounds=rounds(benchmark, case), warmup_rounds=0)
    median = sorted(inner, key=lambda round_: round_["seconds"])[len(inner) // 2]
    if median.get("parts"):
        benchmark.extra_info["seconds_by_part"] = {part: round(s, 3) for part, s in median["parts"].items()}
    return median["seconds"]


@pytest.mark.parametrize("case", CASES)
def test_bare_fit_and_evaluate(benchmark, request, case):
    median = timed(benchmark, case, "floor")
    benchmark.extra_info.update(backend=compat.backend(), inner_median_s=median)
    request.config.stash.setdefault(FLOOR_KEY, {})[case] = median


@pytest.mark.parametrize("case", CASES)
def test_every_check_sharing_one_run(benchmark, request, case):
    median = timed(benchmark, case, "gate")
    benchmark.extra_info.update(backend=compat.backend(), inner_median_s=median)
    request.config.stash.setdefault(GATE_KEY, {})[case] = median
    floor = request.config.stash.get(FLOOR_KEY, {}).get(case)
    if floor is not None:
        benchmark.extra_info.update(bare_fit_evaluate_median_s=floor, ratio_to_bare_fit_evaluate=median / floor)


@pytest.mark.slow
def test_other_kinds_grow_the_built_in_suite(benchmark, request):
    """The gate seconds of the other kinds' pipelines over the applications' (each timed above, in its
    own process): what they add to the default suite."""
    gates = request.config.stash.get(GATE_KEY, {})
    if benchmark.disabled or not all(case in gates for case in (*APPLICATIONS, *OTHER_KINDS)):
        pytest.skip("needs every built-in pipeline's gate timed above, with --benchmark-enable")
    applications = sum(gates[name] for name in APPLICATIONS)
    others = sum(gates[name] for name in OTHER_KINDS)
    benchmark.group = "suite cost: other kinds"
    benchmark.pedantic(lambda: None, rounds=1)  # times nothing: its figure is in extra_info, with the others
    benchmark.extra_info.update(gate_seconds=dict(gates), applications_s=applications, other_kinds_s=others)
    benchmark.extra_info["growth_from_other_kinds"] = others / applications


if __name__ == "__main__":  # one round, in this fresh process: python test_suite_cost.py floor|gate CASE
    work = {"floor": bare_fit_and_evaluate, "gate": every_check}[sys.argv[1]]
    pipeline = pipeline_for(sys.argv[2])
    start = time.perf_counter()
    parts = work(pipeline)
    print(json.dumps({"seconds": time.perf_counter() - start, "parts": parts}))
