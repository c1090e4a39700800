"""The checks that look at an untrained model share one build per pipeline and seed (run/builds.py)."""

import numpy as np
from broken_pipelines.common import compiled_cnn, small_pipeline

from pipeline_checks.checks import check_labels, check_preprocessing, check_save_load
from pipeline_checks.model import compat
from pipeline_checks.run.builds import fresh_build
from pipeline_checks.run.training import forget_shared_runs, shared_run


def counted_builds():
    calls = []

    def build():
        calls.append(1)
        return compiled_cnn()

    return build, calls


def test_labels_preprocessing_and_save_load_build_the_model_once_between_them():
    build, calls = counted_builds()
    pipeline = small_pipeline("counted-builds", build_model=build)
    try:
        shared_run(pipeline, 0)
        assert len(calls) == 1  # the training run's own
        results = [check(pipeline, seed=0) for check in (check_labels, check_preprocessing, check_save_load)]
        assert all(result.passed for result in results), "\n".join(map(str, results))
        assert len(calls) == 2
        fresh_build(pipeline, 0)  # save_load took the shared build to load the weights file into
        assert len(calls) == 3
    finally:
        forget_shared_runs(pipeline)


def test_the_shared_build_stays_the_training_runs_initial_model_after_the_checks_that_use_it():
    pipeline = small_pipeline("shared-build-untouched")
    try:
        run = shared_run(pipeline, 0)
        assert check_labels(pipeline, seed=0).passed and check_preprocessing(pipeline, seed=0).passed
        build = fresh_build(pipeline, 0)
        assert all(np.array_equal(compat.to_numpy(v), initial) for v, initial in zip(build.weights, run.initial))
        compat.set_random_seed(0)
        again = pipeline.fresh_model()
        assert all(
            np.array_equal(compat.to_numpy(a), compat.to_numpy(b)) for a, b in zip(build.variables, again.variables)
        )
    finally:
        forget_shared_runs(pipeline)
