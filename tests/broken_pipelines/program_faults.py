"""Programs that break beneath the checks: inputs made NaN by the preprocessing, a Keras 2 call.

Each row is the bug as published, on the small CNN and on the residual net of `families`,
with the published fix as its correct twin.
"""

import functools

import numpy as np

from broken_pipelines import families
from broken_pipelines.common import DATA, broken, compiled_cnn, correct, small_pipeline
from pipeline_checks.model import compat

# One blank frame among the images: a constant image has a standard deviation of 0.
_IMAGES = DATA.images.copy()
_IMAGES[0] = 128
WITH_A_BLANK_IMAGE = (_IMAGES, DATA.labels, DATA.class_names)


def standardize_each_image(images, epsilon: float = 0.0):
    """Z-score each channel of each image, as deepcell-toolbox's `processing.normalize` did.

    Without an epsilon a constant channel divides 0 by 0: NaN (vanvalenlab/deepcell-toolbox#71,
    "normalize has no epsilon in the denominator"; the same bug in MONAI's NormalizeIntensity,
    Project-MONAI/MONAI#1092). The published fix (deepcell-toolbox#72) adds keras' epsilon, 1e-7.
    """
    x = images.astype("float32")
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = x.std(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # the bug: 0 / 0 on the blank image
        return (x - mean) / (std + epsilon)


_STANDARDIZED_WITH_EPSILON = functools.partial(standardize_each_image, epsilon=1e-7)


def standardized_without_epsilon():
    return small_pipeline("zscore-no-epsilon", data=WITH_A_BLANK_IMAGE, preprocess_train=standardize_each_image)


def standardized_with_epsilon():
    return small_pipeline("zscore-epsilon", data=WITH_A_BLANK_IMAGE, preprocess_train=_STANDARDIZED_WITH_EPSILON)


def residual_standardized_without_epsilon():
    return small_pipeline(
        "residual-zscore-no-epsilon",
        build_model=families.residual_net,
        data=WITH_A_BLANK_IMAGE,
        preprocess_train=standardize_each_image,
    )


def residual_standardized_with_epsilon():
    return small_pipeline(
        "residual-zscore-epsilon",
        build_model=families.residual_net,
        data=WITH_A_BLANK_IMAGE,
        preprocess_train=_STANDARDIZED_WITH_EPSILON,
    )


def compiled_as_keras2_wrote_it(build, metrics_by_position: bool):
    """`build()` compiled again the way broadinstitute/keras-resnet's docstrings compile it,
    `model.compile("adam", "categorical_crossentropy", ["accuracy"])`: Keras 2's third positional
    argument is `metrics`, Keras 3's is `loss_weights`, so on Keras 3 the metrics become loss weights
    and fit raises "dtype='string' is not a valid dtype for Keras type promotion". The published
    fix passes them by keyword (Keras 3's compile signature; the migration guide's advice)."""
    keras = compat.keras()
    model = build()
    optimizer, loss = keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy"
    if metrics_by_position:
        model.compile(optimizer, loss, ["accuracy"])
    else:
        model.compile(optimizer, loss, metrics=["accuracy"])
    return model


def metrics_by_position():
    build = functools.partial(compiled_as_keras2_wrote_it, compiled_cnn, True)
    return small_pipeline("keras2-metrics-by-position", build_model=build)


def metrics_by_keyword():
    build = functools.partial(compiled_as_keras2_wrote_it, compiled_cnn, False)
    return small_pipeline("keras2-metrics-by-keyword", build_model=build)


def residual_metrics_by_position():
    build = functools.partial(compiled_as_keras2_wrote_it, families.residual_net, True)
    return small_pipeline("residual-keras2-metrics-by-position", build_model=build)


def residual_metrics_by_keyword():
    build = functools.partial(compiled_as_keras2_wrote_it, families.residual_net, False)
    return small_pipeline("residual-keras2-metrics-by-keyword", build_model=build)


# On Keras 3 every check that runs the model raises, naming the argument Keras' message does not.
_METRICS_AS_LOSS_WEIGHTS = r"likely cause: compile's third positional argument is loss_weights in Keras 3"
_KERAS3 = ("tensorflow", "jax", "torch")
_KERAS2_CALL = "Keras 2's compile(optimizer, loss, metrics) read by Keras 3: the metrics are loss weights"
_ON_KERAS2 = "Keras 2 reads the third positional argument as metrics: the program is correct there"


# What each check says of inputs that hold NaN: numerics names the cause, the checks that train see
# its symptoms, and preprocessing, whose two paths agree NaN for NaN, passes saying how many.
_NAN_INPUTS = {
    "numerics": r"inputs went non-finite first, before training(.|\n)*a division by zero, e\.g\. by a per-image std",
    "labels": r"loss at initialization nan",
    "overfit": r"the loss is nan after fit",
    # Keras 2 on a CPU with oneDNN's AVX512 kernels logs a finite fit loss where train-mode's is NaN.
    "agreement": r"Not finite: (fit|train-mode) loss is nan",
}

CASES = [
    correct(standardized_with_epsilon),
    correct(residual_standardized_with_epsilon),
    broken(standardized_without_epsilon, "per-image z-score without an epsilon: NaN on a blank image", **_NAN_INPUTS),
    broken(
        residual_standardized_without_epsilon,
        "per-image z-score without an epsilon: NaN on a blank image (residual net)",
        **_NAN_INPUTS,
    ),
    correct(metrics_by_keyword),
    correct(residual_metrics_by_keyword),
    correct(metrics_by_position, "none on Keras 2 (its third argument is metrics)")
    .on(_KERAS3, _KERAS2_CALL, raises=_METRICS_AS_LOSS_WEIGHTS)
    .on("keras2", _ON_KERAS2),
    correct(residual_metrics_by_position, "none on Keras 2 (its third argument is metrics)")
    .on(_KERAS3, _KERAS2_CALL, raises=_METRICS_AS_LOSS_WEIGHTS)
    .on("keras2", _ON_KERAS2),
]
