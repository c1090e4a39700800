"""check_numerics: where NaN or Inf first appears in a run, and what that says about the cause."""

import dataclasses
import math
import re

import numpy as np
import pytest
from broken_pipelines.common import DATA, small_pipeline
from broken_pipelines.training import huge_learning_rate, loss_arguments_swapped

from pipeline_checks.checks import check_numerics
from pipeline_checks.checks import numerics as module
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.model import compat
from pipeline_checks.run.training import shared_run
from pipeline_checks.testing.small_models import small_bn_cnn

IMAGES = DATA.images.copy()


def test_huge_learning_rate_diverges_from_finite_gradients(pipeline_of):
    result = check_numerics(pipeline_of(huge_learning_rate))
    cause = "learning rate is far too high (learning rate 1e+06): gradients were finite at initialization"
    assert cause in result.details
    assert np.isfinite(result.numbers["largest_gradient"])
    lines = result.details.splitlines()
    if compat.backend() in ("jax", "torch"):  # the weights stay finite there and explode (see the row)
        assert result.summary == "weights exploded first, after the first step"
        assert re.match(
            r"  weights exploded first, after the first step: 8 of 10 trainable weights grew over 10000-fold .*: "
            r"conv2d(_\d+)?/kernel 0.245 -> ",
            lines[0],
        )
        assert "weights exploded" in lines[1] and result.numbers["largest_weight"] > 1e6
        return
    summary = "weights went non-finite first, after the first epoch (step 3)"
    assert result.summary == summary
    # The first thing seen fails, with the cause and the fix; what came after is listed below them.
    assert lines[1].startswith("    Likely cause: the learning rate is far too high (learning rate 1e+06)")
    assert lines[2].startswith("    Fix: lower the learning rate")
    if not compat.is_keras3():  # Keras 2's initial weights differ: only a BN variance overflows, the loss stays finite
        assert re.match(rf"  {re.escape(summary)}: 1 of 14 variables .* first batch_normalization(_\d+)?/mov", lines[0])
        return
    assert re.match(rf"  {re.escape(summary)}: 8 of 14 variables .* first conv2d(_\d+)?/kernel", lines[0])
    assert lines[3].startswith(
        "  Loss at batch 1 of epoch 2 (step 4): nan reported by fit; before it the loss went from 1.91 to "
    )
    assert np.isnan(result.numbers["last_loss"])


def test_log_of_zero_is_non_finite_at_initialization(pipeline_of):
    result = check_numerics(pipeline_of(loss_arguments_swapped))
    assert result.summary == "loss went non-finite first, at initialization"
    lines = result.details.splitlines()
    assert lines[0] == ("  loss went non-finite first, at initialization: inf in a training-mode pass before any step")
    assert "loss(y_true, y_pred) arguments swapped" in lines[1]
    assert re.match(
        r"  Gradients at initialization: 10 of 10 on a training batch hold NaN or Inf, first conv2d(_\d+)?/kernel",
        lines[3],
    )
    assert result.numbers["initial_loss"] == np.inf


def test_passes_correct_pipeline_without_a_gradient_pass(pipeline_of, monkeypatch):
    monkeypatch.setattr(
        module, "initial_gradients", lambda *run: pytest.fail("the first step already shows the gradients")
    )
    result = check_numerics(pipeline_of(small_pipeline))
    assert result.passed, str(result)
    assert result.summary == "inputs, loss, weights and initial gradients finite over 45 steps of fit"
    assert "Initial gradients finite: fit's first step updated every weight to a finite value" in result.details
    assert "largest_gradient" not in result.numbers and 0 < result.numbers["largest_weight"] < 10


def _clipping_cnn():
    model = small_bn_cnn((16, 16, 3), classes=3)
    model.compile(optimizer=compat.keras().optimizers.Adam(0.01, clipvalue=1.0), loss="sparse_categorical_crossentropy")
    return model


def _clipvalue_pipeline():
    return small_pipeline("clipvalue", build_model=_clipping_cnn)


def test_clipvalue_could_hide_an_infinite_gradient_so_they_are_computed(pipeline_of):
    result = check_numerics(pipeline_of(_clipvalue_pipeline))
    assert result.passed, str(result)
    assert "Initial gradients finite" not in result.details
    assert 0 < result.numbers["largest_gradient"] < 10


def _norm_of(bias):
    """An L2 norm, not its square, as a regularizer: its gradient at a zero bias is 0/0."""
    keras = compat.keras()
    if hasattr(keras, "ops"):
        return 1e-3 * keras.ops.sqrt(keras.ops.sum(keras.ops.square(bias)))
    import tensorflow as tf

    return 1e-3 * tf.sqrt(tf.reduce_sum(tf.square(bias)))


def _norm_regularized_dense():
    keras = compat.keras()
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", bias_regularizer=_norm_of),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model


def _norm_regularized_pipeline():
    return small_pipeline("norm-regularizer", build_model=_norm_regularized_dense)


def test_nan_gradient_of_a_finite_loss_is_found_at_initialization(pipeline_of):
    result = check_numerics(pipeline_of(_norm_regularized_pipeline))
    assert result.summary == "gradients went non-finite first, at initialization", str(result)
    assert re.match(
        r"  gradients went non-finite first, at initialization: 1 of 2 on a training batch hold NaN or Inf, "
        r"first (sequential(_\d+)?/)?dense(_\d+)?/bias",
        result.details,
    )
    assert math.isfinite(result.numbers["initial_loss"])


@pytest.mark.parametrize("factory", [_clipvalue_pipeline, huge_learning_rate], ids=["clipvalue", "huge-learning-rate"])
def test_gradients_leave_the_run_model_as_it_was(pipeline_of, factory):
    model = shared_run(pipeline_of(factory)).model
    variables = [*model.variables, *compat.metric_variables(model)]
    before = [compat.to_numpy(v) for v in variables]
    check_numerics(pipeline_of(factory))
    after = [compat.to_numpy(v) for v in variables]
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after))


def test_unsupported_backend_skips_gradients_and_says_so(pipeline_of, monkeypatch):
    pipeline = pipeline_of(_clipvalue_pipeline)  # clipvalue: the first step does not show the gradients
    shared_run(pipeline)
    monkeypatch.setattr(compat, "backend", lambda: "openvino")
    result = check_numerics(pipeline)
    assert result.passed
    assert result.summary == "inputs, loss, weights finite over 45 steps of fit"
    assert "Gradients not checked: computing gradients is not supported on the openvino backend." in result.details


@pytest.mark.parametrize(
    "change, summary, detail",
    [
        (
            "weights",
            "weights exploded first, by the end of fit (step 45)",
            r"^  weights exploded first, by the end of fit \(step 45\): 1 of 10 trainable weights grew over "
            r"10000-fold .*: dense(_\d+)?/kernel(:0)? [\d.]+ -> [\d.]+e\+0[45]",
        ),
        (
            "loss",
            "loss rose first, by the end of fit (step 45)",
            r"^  loss rose first, by the end of fit \(step 45\): 5 on average over the last epoch, 3.33 times "
            r"the 1.5 at initialization \(largest 5\)",
        ),
    ],
    ids=["weights-grow-1e4-fold", "loss-ends-3x-initial"],
)
def test_finite_values_that_explode_fail(pipeline_of, monkeypatch, change, summary, detail):
    """Divergence that stays finite (as SGD at lr 1e6 does on JAX) fails all the same, naming the numbers."""
    run = shared_run(pipeline_of(small_pipeline))
    if change == "weights":
        last = len(run.weights) - 2  # the head's kernel
        final = tuple(value * 1e5 if i == last else value for i, value in enumerate(run.final))
        exploded = dataclasses.replace(run, final=final)
    else:
        exploded = dataclasses.replace(run, initial_loss=1.5, batch_losses=[1.5] * 42 + [5.0] * 3)
    monkeypatch.setattr(module, "shared_run", lambda pipeline, seed: exploded)
    result = check_numerics(run.pipeline)
    assert not result.passed and result.summary == summary
    assert re.search(detail, result.details), result.details
    assert "Likely cause: the learning rate is far too high" in result.details


def test_non_finite_inputs_come_first(pipeline_of, monkeypatch):
    run = shared_run(pipeline_of(small_pipeline))
    x = run.x_train.copy()
    x[5, 0, 0, 0] = np.nan
    monkeypatch.setattr(module, "shared_run", lambda pipeline, seed: dataclasses.replace(run, x_train=x))
    result = check_numerics(run.pipeline)
    assert result.summary == "inputs went non-finite first, before training"
    assert "1 of 12 preprocessed images hold NaN or Inf (first: image 5)" in result.details
    assert "Likely cause: the preprocessed inputs hold NaN or Inf" in result.details


def test_raise_if_failed(pipeline_of):
    failing = check_numerics(pipeline_of(huge_learning_rate))
    with pytest.raises(PipelineCheckFailure) as raised:
        failing.raise_if_failed()
    assert str(raised.value) == str(failing)
    assert re.match(
        r"check numerics FAILED on pipeline 'huge-learning-rate': weights (went non-finite|exploded) first",
        str(raised.value),
    )
    passing = check_numerics(pipeline_of(small_pipeline))
    assert passing.raise_if_failed() is passing


def test_leaves_the_pipeline_unchanged(pipeline_of):
    pipeline = pipeline_of(loss_arguments_swapped)
    check_numerics(pipeline)
    assert np.array_equal(pipeline.raw_data().images, IMAGES)
    assert pipeline.fit_kwargs == {"epochs": 15, "batch_size": 4} and pipeline.label_encoding == "one_hot"
