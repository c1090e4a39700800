"""Pipelines whose model has several outputs: a classifier head and a regression head on one trunk,
each with its own loss and metrics, declared as arrays `(images, {output name: targets})` (or a list
of targets in the outputs' order), as `fit(x, y)` takes them.

The correct rows follow the multi-output models of keras.io's functional API guide ("Models with
multiple inputs and outputs": one loss per output by name, `loss_weights`, a shared trunk) and of
keras-team/keras#10306 (a face model with a categorical `AGE` head beside `mse` heads for valence,
arousal and dominance, compiled with a dict of losses and of loss weights), scaled down to one image
input: the small Conv-BN CNN's trunk, a 3-way softmax `kind` head (sparse categorical cross-entropy,
accuracy) and a linear `value` head (mean squared error, mean absolute error) regressing the value
each image's pattern stands for, as regression-cnn does, in 45 full-batch steps, BatchNorm
statistics recalibrated after fit. The broken rows vary one head or the whole pipeline; every check
that judges targets (labels, overfit, agreement) judges each output and names the one that fails.
"""

from __future__ import annotations

import functools

import numpy as np

from broken_pipelines.common import DATA, broken, correct, recalibrate_after_fit
from broken_pipelines.regression import PATTERN_VALUE
from broken_pipelines.reproducibility import custom_layers
from pipeline_checks.pipelines.pipeline import Pipeline, to_float

LOSSES = {"kind": "sparse_categorical_crossentropy", "value": "mse"}
METRICS = {"kind": ["accuracy"], "value": ["mae"]}


def two_headed_cnn(learning_rate=0.01, value_activation=None, loss_weights=None, as_list=False, rescale=None):
    """The small Conv-BN CNN's trunk with a `kind` softmax head and a `value` head of its own activation."""
    from pipeline_checks.model import compat
    from pipeline_checks.testing.small_models import small_bn_cnn

    keras = compat.keras()
    trunk = small_bn_cnn((16, 16, 3), classes=3)
    inputs = keras.Input((16, 16, 3))
    features = keras.Model(trunk.input, trunk.layers[-2].output)(inputs if rescale is None else rescale(inputs))
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(features)
    value = keras.layers.Dense(1, activation=value_activation, name="value")(features)
    if as_list:
        model = keras.Model(inputs, [kind, value])
        losses, metrics = list(LOSSES.values()), list(METRICS.values())
    else:
        model = keras.Model(inputs, {"kind": kind, "value": value})
        losses, metrics = LOSSES, METRICS
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss=losses, metrics=metrics, loss_weights=loss_weights
    )
    return model


TARGETS = {"kind": DATA.labels.astype(np.int32), "value": PATTERN_VALUE}


def two_outputs(name="two-outputs-cnn", targets=None, **changes) -> Pipeline:
    pipeline = dict(
        name=name,
        build_model=two_headed_cnn,
        data=(DATA.images, dict(TARGETS) if targets is None else targets),
        preprocess_train=lambda images: images.astype("float32") / 255.0,
        fit_kwargs={"epochs": 45, "batch_size": 12},  # 45 full-batch steps, as regression-cnn takes
        after_fit=recalibrate_after_fit,
    )
    if "preprocess_train" in changes:
        changes.setdefault("preprocess_infer", None)
    return Pipeline(**{**pipeline, **changes})


def two_outputs_as_list():
    """The same model with its outputs as a list and `fit(x, [labels, values])`, losses and metrics in
    the outputs' order, as keras.io's functional API guide also allows."""
    return two_outputs(
        "two-outputs-cnn-list",
        build_model=functools.partial(two_headed_cnn, as_list=True),
        targets=list(TARGETS.values()),
    )


def two_outputs_stale_batchnorm():
    """No BatchNorm recalibration after fit: both heads read a trunk normalized with moving statistics
    the weights never saw (keras-team/keras#6977, evaluate on the training data far from fit)."""
    return two_outputs("two-outputs-stale-batchnorm", after_fit=None)


def two_outputs_sigmoid_value():
    """A sigmoid on the `value` head, the classifier head's habit, against targets in standard units (a
    third below 0, a third above 1): keras-team/keras#2399, "If I use sigmoid, but the output is range in
    [0,1000], then i should first normalize the label to [0,1]"."""
    return two_outputs(
        "two-outputs-sigmoid-value", build_model=functools.partial(two_headed_cnn, value_activation="sigmoid")
    )


def two_outputs_value_weight_zero():
    """`loss_weights` 0 for the `value` head: nothing trains it, and fit logs its loss as if it counted.
    keras-team/keras#4030 compiles `loss_weights=[1.0, 0.0]` and asks why the second output does not learn
    ("if loss weight of out2 is zero, it should has no contribution in the back-propagation updates")."""
    weights = {"kind": 1.0, "value": 0.0}
    return two_outputs(
        "two-outputs-value-weight-zero", build_model=functools.partial(two_headed_cnn, loss_weights=weights)
    )


def two_outputs_nan_value():
    """One `value` target is NaN, a value missing from the table it was read from: the total loss is NaN
    from the first batch (keras-team/keras#2134, "NAN loss for regression while training")."""
    values = PATTERN_VALUE.copy()
    values[5] = np.nan
    return two_outputs("two-outputs-nan-value", targets={**TARGETS, "value": values})


def two_outputs_learning_rate_too_small():
    """Adam at 1e-5, a thousandth of the correct row's: neither head fits 12 images in 45 steps
    (stats.stackexchange.com/q/387150, `optimizer_adam(lr = 0.00001)`: the loss hardly moved)."""
    return two_outputs(
        "two-outputs-learning-rate-too-small", build_model=functools.partial(two_headed_cnn, learning_rate=1e-5)
    )


def two_outputs_served_raw_pixels():
    """Pixels / 255 at fit, raw 0..255 pixels at serving (krishnanlab/PyGenePlexus#364, "scaling the
    training data but not the prediction data")."""
    return two_outputs("two-outputs-served-raw-pixels", preprocess_infer=to_float)


def _behind_unregistered_rescale():
    return two_headed_cnn(rescale=custom_layers().UnregisteredRescale(1 / 255))


def two_outputs_unregistered_custom_layer():
    """A rescaling layer of the repository's own in front of the trunk, never registered with keras.saving:
    the saved model does not load (fversaci/WaveTF#3, "ValueError: Unknown layer: HaarWaveLayer2D")."""
    return two_outputs(
        "two-outputs-unregistered-custom-layer", build_model=_behind_unregistered_rescale, preprocess_train=to_float
    )


UNREACHED = r"output 'value': .*of the targets' variance"

CASES = [
    correct(two_outputs, "none: a softmax `kind` head and a linear `value` head on one Conv-BN trunk, BN recalibrated"),
    correct(two_outputs_as_list, "none: the same model, outputs and targets as lists"),
    broken(
        two_outputs_stale_batchnorm,
        "two heads without BN recalibration: stale moving statistics",
        agreement=r"failed on .*'kind'|failed on .*'value'",
    ),
    broken(
        two_outputs_sigmoid_value,
        "a sigmoid on the value head against standardized targets",
        labels=r"failed on 'value'.*a sigmoid output cannot reach \d+ of 12 targets",
        overfit=UNREACHED,
    ),
    broken(
        two_outputs_value_weight_zero,
        "loss_weights 0 for the value head: nothing trains it",
        overfit=UNREACHED,
        variables_change=r"never changed in 45 steps of fit \(value/kernel, value/bias\)",
        # Agreement passes: the untrained head's R² moves with the trunk's BatchNorm mode (-2.49 in evaluate
        # against -2.41 in train-mode at seed 0), 2% of an error 3.4 times the targets' variance.
    ),
    broken(
        two_outputs_nan_value,
        "one NaN among the value head's targets",
        numerics=r"output 'value': 1 of 12 targets fit trains on are nan",
        overfit="",
        agreement="",
    ),
    broken(
        two_outputs_learning_rate_too_small,
        "Adam learning rate 1e-5 on the two-headed CNN",
        overfit=r"failed on 'kind', 'value'",
    ),
    broken(
        two_outputs_served_raw_pixels,
        "two heads fit on pixels / 255, served raw 0..255 pixels",
        preprocessing=r"training feeds pixels / 255(.|\n)*inference feeds raw pixels 0\.\.255",
        agreement="",
    ),
    broken(
        two_outputs_unregistered_custom_layer,
        "two heads behind a custom layer not registered as serializable",
        save_load=r"(?s)the custom class 'UnregisteredRescale' is not registered.*register_keras_serializable",
    ),
]
