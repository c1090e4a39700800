"""`training.replay` reuses the shared run's traced and instantiated training step.

`tf.random.set_seed` clears TensorFlow's kernel cache (`TFE_ContextClearCaches`): the traced
step is not retraced, but its next call instantiates and optimizes its graph again, seconds
for a Keras application. These tests count that clear and the step's traces instead of timing
the replay, so they hold on a loaded machine too.
"""

import numpy as np
import pytest
from broken_pipelines.common import small_pipeline

from pipeline_checks.checks import check_determinism
from pipeline_checks.model import compat
from pipeline_checks.run.training import forget_shared_runs, replay, shared_run

pytestmark = pytest.mark.skipif(
    not compat.keeps_compiled_functions(), reason="seeding without a kernel-cache clear is for Keras 3 on TensorFlow"
)


@pytest.fixture
def kernel_cache_clears(monkeypatch):
    """The calls to TFE_ContextClearCaches, which `context._set_global_seed` looks up at each call."""
    from tensorflow.python import pywrap_tfe

    calls = []
    clear = pywrap_tfe.TFE_ContextClearCaches
    monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", lambda handle: (calls.append(handle), clear(handle))[1])
    return calls


def traced_functions(model) -> list:
    """The tf.functions Keras' train_function calls (the step on an iterator)."""
    return [
        cell.cell_contents
        for cell in model.train_function.__closure__
        if hasattr(cell.cell_contents, "experimental_get_tracing_count")
    ]


def test_a_replay_neither_retraces_nor_clears_the_kernels_of_the_traced_step(kernel_cache_clears):
    pipeline = small_pipeline("replay-keeps-kernels")
    try:
        run = shared_run(pipeline, 0)
        step, functions = run.model.train_function, traced_functions(run.model)
        traces = [f.experimental_get_tracing_count() for f in functions]
        kernel_cache_clears.clear()
        again = replay(run, epochs=1)
        assert kernel_cache_clears == []
        assert run.model.train_function is step and functions
        assert [f.experimental_get_tracing_count() for f in functions] == traces
        assert all(np.array_equal(a, b) for a, b in zip(again.final, run.after_first_epoch))
    finally:
        forget_shared_runs(pipeline)


def with_stateful_noise():
    """A correct model whose training noise comes from a stateful TF random kernel (`tf.random.uniform`
    under the global seed): same-seed runs in fresh processes agree, but the kernel's state lives on in
    the instantiated step, so only a replay that clears the kernel cache reproduces the run."""
    import tensorflow as tf
    from broken_pipelines.common import compiled_cnn

    keras = compat.keras()

    class StatefulNoise(keras.layers.Layer):
        def call(self, inputs, training=None):
            return inputs + tf.random.uniform(tf.shape(inputs), maxval=0.1) if training else inputs

    model = compiled_cnn()
    noisy = keras.Sequential([keras.Input((16, 16, 3)), StatefulNoise(), model])
    noisy.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return noisy


def test_a_replay_a_stale_random_kernel_changed_is_replayed_seeded_in_full(kernel_cache_clears):
    pipeline = small_pipeline("stateful-noise", build_model=with_stateful_noise, after_fit=None)
    try:
        shared_run(pipeline, 0)
        kernel_cache_clears.clear()
        result = check_determinism(pipeline, 0)
    finally:
        forget_shared_runs(pipeline)
    assert result.passed and result.numbers["largest_difference"] == 0, str(result)
    assert kernel_cache_clears, "the bitwise replay needs the kernel cache cleared, as train clears it"


def test_the_checks_before_determinism_leave_the_traced_step_instantiated(kernel_cache_clears):
    from pipeline_checks.checks import FAMILIES, all_checks

    pipeline = small_pipeline("checks-keep-kernels")
    checks = all_checks()
    try:
        shared_run(pipeline, 0)
        kernel_cache_clears.clear()
        results = [checks[family](pipeline, seed=0) for family in FAMILIES[: FAMILIES.index("determinism") + 1]]
    finally:
        forget_shared_runs(pipeline)
    assert all(result.passed for result in results), "\n".join(map(str, results))
    assert kernel_cache_clears == []


def test_reseeding_within_a_test_keeps_the_kernels_and_a_tests_start_clears_them(kernel_cache_clears):
    import tensorflow as tf

    from pipeline_checks.pytest_plugin import seeding

    tf.constant(0.0)  # an eager context, whose caches a full seed clears (none until TensorFlow runs an op)
    seeding.reseed_from_pytest_randomly(3)
    assert seeding.start_test(None, keep_compiled=True) == 3
    seeding.end_test()
    assert kernel_cache_clears == []
    seeding.start_test(None)
    seeding.end_test()
    seeding.start_session()
    assert kernel_cache_clears, "a test's start seeds as keras.utils.set_random_seed does"


def test_a_suite_test_seeds_without_clearing_the_kernels(pytester):
    pytester.makepyfile(
        test_uses_check="""
        def test_check(pc_check):
            pass

        def test_seed(pc_seed):
            pass
        """
    )
    result = pytester.runpytest("--setup-plan", "-p", "no:randomly")
    used = {
        line.split("::")[1].split()[0]: set(line.split("fixtures used: ")[1].rstrip(")").split(", "))
        for line in result.stdout.lines
        if "::test_" in line
    }
    assert "_pc_check_seed" in used["test_check"] and "pc_seed" not in used["test_check"]
    assert "pc_seed" in used["test_seed"]
