"""check_overfit and check_numerics on regressions: R², the share of the targets' variance fit explains."""

import re

import numpy as np
import pytest
from broken_pipelines.regression import fuel_efficiency, regression_cnn, regression_cnn_model
from broken_pipelines.regression_training import cnn_learning_rate_too_small, cnn_nan_target

from pipeline_checks.checks import check_numerics, check_overfit
from pipeline_checks.model.batches import Batches
from pipeline_checks.model.compat import keras as get_keras


def test_the_regression_cnn_explains_its_targets_within_its_epochs(forgotten):
    result = check_overfit(forgotten(regression_cnn()))
    assert result.passed, result
    assert re.fullmatch(
        r"fit explains 0\.9\d of the targets' variance \(R², 1 - fit's loss \(mean squared error\) / the targets' "
        r"variance 1\) at epoch \d+ of 45, target 0\.9; inference mode after BatchNorm recalibration explains "
        r"\d\.\d\d on the same rows",
        result.summary,
    ), result.summary
    assert result.numbers["target"] == 0.9
    assert result.numbers["best_r2"] >= 0.9 and result.numbers["targets_variance"] == pytest.approx(1.0)
    assert "accuracy" not in result.summary and "check_agreement's to judge" in result.details


def test_a_slow_start_is_continued_to_the_target(forgotten):
    """At seed 3 the CNN starts 13 times the targets' variance off: R² 0.65 in its 45 epochs, 0.9 after 133 more."""
    result = check_overfit(forgotten(regression_cnn()), seed=3)
    assert result.passed, result
    assert "after" in result.summary and "more epochs continued from its end, target 0.9" in result.summary
    assert 0 < result.numbers["continued_epochs"] <= 450
    assert "its loss fell, so it was continued from its final state" in result.details


def test_the_fuel_tutorial_is_judged_on_its_own_predictions_as_its_loss_is_absolute(forgotten):
    """MAE logs no squared error: R² is the check's own pass, 0.95 in its 100 epochs (noise is the rest)."""
    result = check_overfit(forgotten(fuel_efficiency()))
    assert result.passed, result
    assert re.fullmatch(
        r"fit explains 0\.9\d of the targets' variance \(R² of a training-mode pass on the final weights over the "
        r"128 training rows\) by the end of its 100 epochs, target 0\.9; inference mode explains 0\.9\d on the same "
        r"rows",
        result.summary,
    ), result.summary
    assert "Fit logs no mean squared error" in result.details


def test_a_learning_rate_far_too_small_stalls_below_the_target(forgotten):
    result = check_overfit(forgotten(cnn_learning_rate_too_small()))
    assert not result.passed
    assert re.fullmatch(
        r"fit explains 0\.\d\d of the targets' variance at best \(R², 1 - fit's loss \(mean squared error\) / the "
        r"targets' variance 1\), below the target 0\.9, in 45 epochs: the trainable weights moved by 0\.\d\d% of "
        r"their size",
        result.summary,
    ), result.summary
    assert "Not continued: its 45 epochs show no learning to continue" in result.details
    assert "is not 0.1 above its 0.45 before the first step" in result.details
    assert "check_options={'overfit': {'target_r2': ...}}" in result.details
    assert "Fix: raise the learning rate" in result.details
    assert "accuracy" not in result.details


def test_a_nan_target_fails_numerics_naming_the_targets(forgotten):
    pipeline = forgotten(cnn_nan_target())
    numerics = check_numerics(pipeline)
    assert numerics.summary == "targets went non-finite first, before training", numerics.summary
    assert "targets went non-finite first, before training: 1 of 12 targets fit trains on are nan (rows 5)" in (
        numerics.details
    )
    assert "Likely cause: the targets hold NaN or Inf: missing values in the source table" in numerics.details
    assert "dropna()" in numerics.details
    overfit = check_overfit(pipeline)
    assert not overfit.passed and "the loss is nan after fit" in overfit.summary


def test_numerics_says_it_checked_the_targets_of_a_regression(forgotten):
    result = check_numerics(forgotten(regression_cnn()))
    assert result.passed and result.summary.startswith("inputs, targets, loss, weights"), result.summary


def test_a_target_r2_given_is_judged_as_given(forgotten):
    pipeline = forgotten(regression_cnn("regression-cnn-options", check_options={"overfit": {"target_r2": 0.5}}))
    by_option = check_overfit(pipeline)
    assert by_option.numbers["target"] == 0.5 and "Target 0.5 as given" in by_option.details
    by_argument = check_overfit(pipeline, target_r2=0.99)
    assert by_argument.numbers["target"] == 0.99


def test_target_accuracy_does_not_apply_to_a_regression(forgotten):
    """target_accuracy is a classifier's: a regression keeps its automatic R² target."""
    result = check_overfit(forgotten(regression_cnn()), target_accuracy=0.5)
    assert result.numbers["target"] == 0.9, result


@pytest.mark.parametrize(
    "value, message",
    [
        pytest.param(0, "target_r2 must be a number in (0, 1]; received: target_r2=0", id="zero"),
        pytest.param(1.5, "target_r2 must be a number in (0, 1]; received: target_r2=1.5", id="above-1"),
        pytest.param("0.9", "target_r2 must be a number in (0, 1]; received: target_r2='0.9'", id="a-string"),
    ],
)
def test_invalid_target_r2(value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_overfit(regression_cnn(), target_r2=value)


def test_a_head_on_a_frozen_base_must_learn_not_memorize(forgotten):
    def frozen_trunk():
        model = regression_cnn_model()
        for layer in model.layers[:-1]:
            layer.trainable = False
        model.compile(optimizer=get_keras().optimizers.Adam(0.01), loss="mse", metrics=["mae"])
        return model

    result = check_overfit(forgotten(regression_cnn("regression-cnn-frozen-trunk", build_model=frozen_trunk)))
    assert result.passed, result
    assert re.match(
        r"the trainable part learns: loss \S+ before fit, \S+ after \(inference mode\), R² -?\d\.\d\d at best \(a "
        r"constant prediction, the targets' mean, explains 0\); 0\.9 not demanded, 1\.1% of the weights train",
        result.summary,
    ), result.summary


def test_explained_variance_is_one_minus_sse_over_sst():
    from pipeline_checks.model.probes import explained_variance

    keras = get_keras()
    identity = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones")])
    targets = np.array([[0.5], [1.5], [2.5], [3.5]], dtype="float32")
    exact = Batches([targets[:2], targets[2:]], [targets[:2], targets[2:]])
    assert explained_variance(identity, exact, training=True) == pytest.approx(1.0)
    the_mean = Batches([np.full_like(targets, 2.0)], [targets])
    assert explained_variance(identity, the_mean, training=False) == pytest.approx(0.0)
    one_off = Batches([np.array([[1.5], [1.5], [2.5], [3.5]], dtype="float32")], [targets])
    assert explained_variance(identity, one_off, training=False) == pytest.approx(0.8)  # 1 - 1/5
    constant = Batches([targets], [np.ones_like(targets)])
    assert explained_variance(identity, constant, training=False) is None  # nothing to explain
