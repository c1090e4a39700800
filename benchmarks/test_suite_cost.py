"""What the whole check battery costs against the floor: one bare fit + evaluate.

The checks share one training run per pipeline, so the suite should cost close to one
fit and one evaluate plus cheap measurements (and one replayed epoch for determinism).
`pytest benchmarks/test_suite_cost.py --benchmark-enable` records the ratio in extra_info
as `ratio_to_bare_fit_evaluate`; in the default run each case runs once, as a smoke test.
"""

import numpy as np
import pytest

from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm
from pipeline_checks.model import compat
from pipeline_checks.checks import all_checks
from pipeline_checks.testing.small_models import small_bn_cnn
from pipeline_checks.run.training import forget_shared_runs

ROUNDS = 3
FLOOR_KEY = pytest.StashKey[float]()


def compiled_cnn():
    model = small_bn_cnn((16, 16, 3), classes=3)
    model.compile(optimizer=compat.keras().optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
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


def bare_fit_and_evaluate(pipeline: Pipeline) -> None:
    compat.set_random_seed(0)
    raw = pipeline.raw_data()
    model = pipeline.fresh_model()
    model.fit(pipeline.train_inputs(raw.images), pipeline.targets(raw), verbose=0, **pipeline.fit_kwargs)
    model.evaluate(pipeline.infer_inputs(raw.images), pipeline.targets(raw), batch_size=pipeline.batch_size, verbose=0)


def every_check(pipeline: Pipeline) -> None:
    try:
        results = [check(pipeline) for check in all_checks().values()]
    finally:
        forget_shared_runs(pipeline)
    failed = [str(result) for result in results if not result.passed]
    assert not failed, "\n".join(failed)  # a correct pipeline: a failing check would time the wrong thing


def test_bare_fit_and_evaluate(benchmark, request):
    pipeline = small_pipeline()
    benchmark.group = "suite cost"
    benchmark.pedantic(bare_fit_and_evaluate, args=(pipeline,), rounds=ROUNDS, warmup_rounds=0)
    if not benchmark.disabled:
        request.config.stash[FLOOR_KEY] = benchmark.stats.stats.median


def test_every_check_sharing_one_run(benchmark, request):
    pipeline = small_pipeline()
    benchmark.group = "suite cost"
    benchmark.pedantic(every_check, args=(pipeline,), rounds=ROUNDS, warmup_rounds=0)
    floor = request.config.stash.get(FLOOR_KEY, None)
    if floor is not None:
        benchmark.extra_info.update(bare_fit_evaluate_median_s=floor, ratio_to_bare_fit_evaluate=benchmark.stats.stats.median / floor)
