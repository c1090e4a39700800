"""The agreement oracle on regressions: the R² of the predictions in every mode, gaps in the targets' scale."""

import numpy as np
import pytest

from pipeline_checks import measure_agreement
from pipeline_checks.model.compat import keras as get_keras
from pipeline_checks.oracle.agreement import PREDICT_TOLERANCE, BatchNormFacts
from pipeline_checks.oracle.findings import findings_of
from pipeline_checks.oracle.regression import OWN_R2, TargetSpread, r_squared, value_scales

keras = get_keras()

NO_BATCHNORM = BatchNormFacts(count=0, momenta=(), updates_seen=None, frozen=(), frozen_moved_in_training=())


@pytest.mark.parametrize(
    ("targets", "outputs", "expected"),
    [
        pytest.param([0.5, 1.5, 2.5, 3.5], [0.5, 1.5, 2.5, 3.5], 1.0, id="exact"),
        pytest.param([0.5, 1.5, 2.5, 3.5], [2.0, 2.0, 2.0, 2.0], 0.0, id="the-mean"),
        pytest.param([0.5, 1.5, 2.5, 3.5], [1.5, 1.5, 2.5, 3.5], 0.8, id="one-off-by-one"),  # 1 - 1/5
        # Two outputs: the uniform average of 1.0 and 0.0, as keras.metrics.R2Score computes it.
        pytest.param([[0.5, 10.0], [1.5, 20.0]], [[0.5, 15.0], [1.5, 15.0]], 0.5, id="two-outputs"),
    ],
)
def test_r_squared_is_one_minus_sse_over_sst(targets, outputs, expected):
    assert r_squared(np.array(targets), np.array(outputs)) == pytest.approx(expected)


def _verdict(std: float, mae_gap: float):
    """The findings for evaluate's mae `mae_gap` above train-mode's, on targets of standard deviation `std`."""
    spread = TargetSpread(std**2, 1)
    values = {
        mode: {"loss": 0.0, "mae": std * 0.1 + (mae_gap if mode == "evaluate" else 0.0), OWN_R2: 0.99}
        for mode in ("train-mode", "evaluate", "predict")
    }
    values["predict"] = dict(values["evaluate"])
    scales = value_scales(values["evaluate"], "mse", spread)
    return findings_of(values, (OWN_R2, "mae"), 0.05, PREDICT_TOLERANCE, 100, NO_BATCHNORM, (), None, scales=scales)


def test_the_same_mae_gap_fails_on_narrow_targets_and_passes_on_wide_ones():
    """0.3 of an mae unit is 3 standard deviations of targets in [0, 1], a rounding error in miles per gallon."""
    narrow = [f for f in _verdict(std=0.1, mae_gap=0.3) if f.failure]
    wide = [f for f in _verdict(std=10.0, mae_gap=0.3) if f.failure]
    assert len(narrow) == 1 and not wide
    assert "Gap: evaluate vs train-mode: mae 0.3100 is 0.3000 above train-mode's 0.0100" in narrow[0].summary
    assert "(3 of the targets' std 0.1)" in narrow[0].summary


def test_a_lower_error_than_fit_is_no_failure_and_a_higher_one_is():
    """Errors are worse above: evaluate's mae above fit's fails (it passed as 'evaluate is above fit')."""
    spread = TargetSpread(1.0, 1)
    values = {mode: {"loss": 0.1, "mae": 0.2, OWN_R2: 0.9} for mode in ("train-mode", "evaluate", "predict")}
    scales = value_scales(values["evaluate"], "mse", spread)
    worse = {**values, "fit": {"loss": 0.1, "mae": 0.05, OWN_R2: 0.9}}
    better = {**values, "fit": {"loss": 0.1, "mae": 0.5, OWN_R2: 0.9}}
    failed = [f for f in findings_of(worse, (OWN_R2, "mae"), 0.05, 1e-4, 12, NO_BATCHNORM, (), None, scales=scales)]
    noted = findings_of(better, (OWN_R2, "mae"), 0.05, 1e-4, 12, NO_BATCHNORM, (), None, scales=scales)
    assert [f.summary for f in failed if f.failure] == [
        "Gap: evaluate vs fit: mae 0.2000 is 0.1500 above fit's 0.0500 (0.15 of the targets' std 1)."
    ]
    assert not any(f.failure for f in noted)
    assert noted[0].summary.startswith("Note: evaluate does better than fit's epoch average")


def _r2_failures(train_mode_r2: float, evaluate_r2: float) -> list[str]:
    spread = TargetSpread(1.0, 1)
    values = {mode: {"loss": 1.0, OWN_R2: train_mode_r2} for mode in ("train-mode", "evaluate", "predict")}
    values["evaluate"] = values["predict"] = {"loss": 1.0, OWN_R2: evaluate_r2}
    scales = value_scales(values["evaluate"], "mse", spread)
    found = findings_of(values, (OWN_R2,), 0.05, PREDICT_TOLERANCE, 12, NO_BATCHNORM, (), None, scales=scales)
    return [f.summary for f in found if f.failure]


def test_a_head_worse_than_the_mean_is_judged_on_its_own_error():
    """R² -5.79 against -5.85 (an untrained head, seen on two-outputs rows) is a 0.9% change of an error 6.8
    times the targets' variance: no gap. The same 0.06 from 0.9, or -5 falling to -20, is one."""
    assert _r2_failures(-5.79, -5.85) == []
    assert _r2_failures(0.90, 0.84) == [
        "Gap: evaluate vs train-mode: predicted_r2 0.8400 is 0.0600 below train-mode's 0.9000."
    ]
    assert _r2_failures(-5.0, -20.0) == [
        "Gap: evaluate vs train-mode: predicted_r2 -20.0000 is 15.0000 below train-mode's -5.0000 "
        "(2.5 of the error there (1 - R² = 6))."
    ]


def _regressor(outputs: int, batchnorm: bool = False):
    layers = [keras.Input((3,)), keras.layers.Dense(8, activation="relu")]
    layers += [keras.layers.BatchNormalization(momentum=0.99)] if batchnorm else []
    model = keras.Sequential([*layers, keras.layers.Dense(outputs)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
    return model


def _values(outputs: int, scale: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (64, 3)).astype("float32")
    y = (x @ rng.normal(0, 1, (3, outputs)) + 0.5).astype("float32") * scale
    return x, y


def test_two_float_outputs_are_measured_by_their_r_squared(pc_seed):
    """(N, 2) float targets: no error, the R² in every mode, the table and header name it and the scale."""
    keras.utils.set_random_seed(pc_seed)
    x, y = _values(2, scale=1000.0)
    model = _regressor(2)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    agreement = measure_agreement(model, (x, y), history, batch_size=16)
    assert agreement.task == "regression"
    assert agreement.gated == (OWN_R2, "mae")
    for mode in ("train-mode", "evaluate", "predict"):
        assert agreement.values[mode][OWN_R2] == pytest.approx(
            r_squared(y, model.predict(x, verbose=0)), abs=1e-4 if mode != "train-mode" else 1
        )
    assert OWN_R2 in agreement.table().splitlines()[0]
    assert f"tolerance 0.05 on {OWN_R2}, mae / std; the targets' std " in agreement.header
    assert "predicted_accuracy" not in str(agreement)


def test_stale_batchnorm_on_a_regression_fails_with_its_cause(pc_seed):
    """A few BN updates at momentum 0.99: evaluate's R² falls below train-mode's, and recalibration closes it."""
    keras.utils.set_random_seed(pc_seed)
    x, y = _values(1, scale=30.0)
    y = y[:, 0] + 20.0  # miles per gallon: far from the initial moving statistics
    model = _regressor(1, batchnorm=True)
    history = model.fit(x, y, epochs=60, batch_size=64, verbose=0)  # full batches: train-mode is fit's
    agreement = measure_agreement(model, (x, y), history, batch_size=64)
    failures = [f.summary for f in agreement.findings if f.failure]
    assert any(s.startswith(f"Gap: evaluate vs train-mode: {OWN_R2}") for s in failures), str(agreement)
    assert "Cause: stale BatchNormalization moving statistics" in agreement.diagnosis
    assert agreement.values["recalibrated"][OWN_R2] > agreement.values["evaluate"][OWN_R2] + 0.05
    assert OWN_R2 in agreement.values["fit"]  # 1 - fit's MSE / the targets' variance


def test_the_check_names_the_r_squared_in_its_headline():
    from broken_pipelines.regression_agreement import regression_cnn_stale_batchnorm

    from pipeline_checks.checks.agreement import check_agreement

    result = check_agreement(regression_cnn_stale_batchnorm())
    assert not result.passed
    assert result.headline.startswith(f"{OWN_R2} fit ")
    assert result.summary.startswith(f"Gap: evaluate vs train-mode: {OWN_R2} ")


@pytest.fixture
def two_value_pipeline():
    """A tabular regression with (N, 2) float targets: two values per example."""
    from pipeline_checks.pipelines.pipeline import Pipeline

    x, y = _values(2, scale=3.0)
    return Pipeline(name="two-values", build_model=lambda: _regressor(2), data=(x, y), fit_kwargs={"epochs": 2})


@pytest.mark.parametrize("check", ["agreement", "frozen_layers", "preprocessing", "save_load"])
def test_no_check_raises_on_two_float_targets_per_example(two_value_pipeline, check):
    from pipeline_checks.checks import all_checks

    result = all_checks()[check](two_value_pipeline)
    assert result.passed, str(result)
