"""Broken regression pipelines caught by the training checks (overfit, numerics, variables_change),
each varying a correct row of regression.py with the bug a public report describes."""

from __future__ import annotations

import numpy as np

from broken_pipelines.common import broken
from broken_pipelines.regression import MPG, PATTERN_VALUE, ROWS, fuel_efficiency, regression_cnn, regression_cnn_model


def _slow_cnn():
    return regression_cnn_model(learning_rate=1e-5)


def cnn_learning_rate_too_small():
    """Adam at 1e-5, a thousandth of the CNN's 0.01: the loss hardly moves in 15 epochs. As in
    "Cannot make my neural network fit the training data perfectly" (stats.stackexchange.com/q/387150):
    an MLP with `optimizer_adam(lr = 0.00001)` and mean squared error, whose loss went from 0.0084 to
    0.0072 in 20 epochs on 3 points."""
    return regression_cnn("regression-cnn-learning-rate-too-small", build_model=_slow_cnn)


def _nan_value() -> np.ndarray:
    targets = PATTERN_VALUE.copy()
    targets[5] = np.nan  # one value missing from the table the targets were read from
    return targets


def cnn_nan_target():
    """One target is NaN: a missing value in the table of values read as NaN. As in keras-team/keras#2134
    ("NAN loss for regression while training"), where the data held NaN after standardization and the
    fix was to check `np.any(np.isnan(y_train))` before fit."""
    return regression_cnn("regression-cnn-nan-target", targets=_nan_value())


def _unknown_horsepower() -> np.ndarray:
    rows = ROWS.copy()
    rows[[7, 42, 99], 2] = np.nan  # the Auto MPG table's '?' horsepower, read with na_values="?"
    return rows


def fuel_efficiency_without_dropna():
    """TensorFlow's basic regression tutorial with its `dataset = dataset.dropna()` left out: "The
    dataset contains a few unknown values" (6 horsepower entries of the Auto MPG table, '?' read as
    NaN; tensorflow.org/tutorials/keras/regression, "Clean the data"). The Normalization layer adapts
    to a NaN mean, and every output and loss is NaN."""
    return fuel_efficiency("regression-fuel-efficiency-without-dropna", rows=_unknown_horsepower(), targets=MPG)


def _cnn_with_stop_gradient():
    from broken_pipelines.training import _features
    from pipeline_checks.model import compat

    keras = compat.keras()
    inputs = keras.Input((16, 16, 3))
    features = _features(inputs, stop_gradient_after_block=0)
    model = keras.Model(inputs, keras.layers.Dense(1, name="value")(features))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def cnn_stop_gradient():
    """A stop_gradient after the first Conv-BN block of the regression CNN: the block's weights get no
    gradient and keep their initial values. As in keras-team/keras#13502 ("stop_gradients() error"),
    a Lambda layer calling stop_gradient to stop the gradients from propagating past a layer."""
    return regression_cnn("regression-cnn-stop-gradient", build_model=_cnn_with_stop_gradient)


CASES = [
    broken(
        cnn_learning_rate_too_small,
        "Adam learning rate 1e-5 on the regression CNN (0.01 in the correct row)",
        overfit=r"(?s)fit explains -?\d\.\d\d of the targets' variance at best.*below the target 0\.9.*moved by",
    ),
    broken(
        cnn_nan_target,
        "one NaN among the regression targets",
        numerics=r"(?s)targets went non-finite first, before training.*1 of 12 targets fit trains on are nan.*dropna",
        overfit=r"the loss is nan after fit",
        agreement=r"Not finite",
    ),
    broken(
        fuel_efficiency_without_dropna,
        "the fuel-efficiency tutorial without dataset.dropna(): 3 unknown horsepower values read as NaN",
        numerics=r"(?s)inputs went non-finite first, before training.*3 of 128.*missing values.*dropna",
        overfit=r"the loss is nan after fit",
        agreement=r"Not finite",
    ),
    broken(
        cnn_stop_gradient,
        "stop_gradient after the first Conv-BN block of the regression CNN",
        variables_change=r"(?s)4 of 10 trainable weights never changed.*stop_gradient",
    ),
]
