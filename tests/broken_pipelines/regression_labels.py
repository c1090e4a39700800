"""Broken regression pipelines caught by the labels check, varying the correct rows of regression.py.

Each trains without an error: an output activation whose range misses the targets, a
cross-entropy on values, an output width Keras broadcasts against the targets. Labels sees each
before the first step; overfit sees the model that cannot fit its targets after training.
"""

from __future__ import annotations

import functools

from broken_pipelines.common import broken
from broken_pipelines.regression import (
    MPG,
    fuel_efficiency,
    fuel_efficiency_model,
    regression_cnn,
    regression_cnn_model,
)


def cnn_sigmoid_output():
    """A sigmoid on the last unit, the classifier's habit, against targets in standard units (a third of
    them below 0, a third above 1). keras-team/keras#2399: "If I use sigmoid, but the output is range in
    [0,1000], then i should first normalize the label to [0,1]" (answered yes), and keras-team/keras#108,
    fchollet: for regression "you couldn't use softmax as activation"."""
    return regression_cnn(
        "regression-cnn-sigmoid-output", build_model=functools.partial(regression_cnn_model, activation="sigmoid")
    )


def cnn_relu_output():
    """A relu on the last unit against standardized targets: the negative third is out of reach, and the
    unit pulled below 0 stops learning. keras-team/keras#3687, "Predictions are all zero": a regression
    whose TimeDistributed(Dense(1, activation='relu')) output predicts 0 everywhere."""
    return regression_cnn(
        "regression-cnn-relu-output", build_model=functools.partial(regression_cnn_model, activation="relu")
    )


def fuel_binary_crossentropy():
    """The fuel tutorial compiled with binary_crossentropy on miles per gallon (targets 8.8 to 37.1): the loss
    turns negative and the outputs are pushed to its clip. tensorflow/tensorflow#71638, "Binary cross entropy
    produces negative results if input is more than 1", and keras-team/keras#1917, "The loss becomes
    negative", a regression model on a cross-entropy style loss. 20 epochs, not the tutorial's 100: the bug
    shows before the first step, and overfit continues a model that cannot fit 10 times its epochs."""
    return fuel_efficiency(
        "regression-fuel-binary-crossentropy",
        build_model=functools.partial(fuel_efficiency_model, loss="binary_crossentropy"),
        fit_kwargs={"epochs": 20, "validation_split": 0.2},
    )


def three_unit_model():
    """The tutorial's model with Dense(3) in place of Dense(1), compiled as it compiles."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    tutorial = fuel_efficiency_model()
    head = keras.layers.Dense(3)(tutorial.layers[-2].output)
    model = keras.Model(tutorial.inputs[0], head)
    model.compile(loss="mean_absolute_error", optimizer=keras.optimizers.Adam(0.001))
    return model


def fuel_three_outputs():
    """tensorflow/tensorflow#45813, "Shape of model output can differ from target data shape": the basic
    regression tutorial with layers.Dense(units=3) in place of units=1 fits targets of shape (batch, 1)
    without an error (Keras 3 raises on (batch,) targets; (batch, 1) broadcast in Keras 2 and 3)."""
    return fuel_efficiency("regression-fuel-three-outputs", targets=MPG[:, None], build_model=three_unit_model)


# overfit fails these rightly: a model whose outputs cannot reach the targets (or are pushed to a clip)
# cannot memorize them (R² at most 0.48 under a sigmoid, 0.50 under a relu, on regression-cnn's targets).
UNREACHED = r"of the targets' variance"
BINARY_ON_VALUES = r"binary_crossentropy on \d+ of 128 targets outside \[0, 1\]"

CASES = [
    broken(
        cnn_sigmoid_output,
        "a sigmoid output against standardized targets (a third below 0, a third above 1)",
        labels=r"a sigmoid output cannot reach \d+ of 12 targets",
        overfit=UNREACHED,
    ),
    broken(
        cnn_relu_output,
        "a relu output against standardized targets (a third below 0)",
        labels=r"a relu output cannot reach \d+ of 12 targets",
        overfit=UNREACHED,
    ),
    broken(
        fuel_binary_crossentropy,
        "binary_crossentropy on miles per gallon (targets 8.8 to 37.1)",
        labels=BINARY_ON_VALUES,
        overfit=UNREACHED,
    )
    .on(
        "keras2",
        "on Keras 2 the same weights give a loss of -368.2 from predict's outputs and -366.2 from evaluate: "
        "outputs at the clip, where Keras 2's binary cross-entropy adds epsilon inside its logs "
        "(log(1 - p + 1e-7)) and Keras 3's does not; agreement names the gap",
        labels=BINARY_ON_VALUES,
        overfit=UNREACHED,
        agreement=r"Gap: predict vs evaluate: loss",
    )
    .on(
        "torch",
        "Keras on torch computes binary_crossentropy with torch.nn.functional.binary_cross_entropy, which refuses "
        "targets outside [0, 1] (RuntimeError at the first loss, before any step; all 160 targets are 8.8 to 37.1): "
        "the loss never turns negative, and labels still names the bug before fit",
        raises=r"raised RuntimeError: all elements of target should be between 0 and 1",
        labels=BINARY_ON_VALUES,
    ),
    broken(
        fuel_three_outputs,
        "the fuel tutorial with Dense(3): MAE broadcast over 3 outputs",
        labels=r"the model outputs 3 values per example for 1 target",
        overfit=r"outputs cannot be compared with the regression targets",
    ),
]
