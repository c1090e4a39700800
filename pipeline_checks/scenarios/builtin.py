"""Correct pipelines for the applications the fixtures build: the suite's defaults and examples."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from pipeline_checks.batchnorm.recalibration import recalibrate_batchnorm
from pipeline_checks.model.applications import (
    APPLICATIONS,
    preprocess_input_for,
    resolve_application_name,
)
from pipeline_checks.pipelines.pipeline import Pipeline
from pipeline_checks.testing.datasets import make_tiny_images

CLASSES = 3
PER_CLASS = 2
EPOCHS = 10  # ResNet50 from scratch first fits all six images at epoch 6


def application_pipeline(name: str, image_size: int | None = None, seed: int = 0) -> Pipeline:
    """A correct fine-tuning pipeline for a `keras.applications` model on six photographs.

    The model is built with `weights=None` at `image_size` (default: the smallest the
    application accepts) with a fresh head (global average pooling, softmax Dense),
    compiled with Adam 1e-3, sparse cross-entropy and accuracy, fit
    for 10 epochs on all six images as one batch, and its BatchNorm statistics recalibrated
    afterwards (precise BN), as a deployment should.

    Args:
        name: an application name, e.g. "ResNet50"; see `known_applications()`.
        image_size: side of the images and the model input, at least the model's minimum.
        seed: seed of the photographs' crops.

    Returns:
        A `Pipeline` named after the application, e.g. "resnet50".

    Example:
        >>> check_agreement(application_pipeline("MobileNetV2")).raise_if_failed()
    """
    spec = APPLICATIONS[resolve_application_name(name)]
    size = spec.min_size if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < spec.min_size:
        raise ValueError(
            f"image_size for {spec.name} must be an integer of at least {spec.min_size}; received: "
            f"image_size={image_size!r}"
        )
    data = make_tiny_images(classes=CLASSES, per_class=PER_CLASS, size=size, seed=seed, kind="photos")
    return Pipeline(
        name=spec.name.lower(),
        build_model=functools.partial(_compiled_application, spec.name, size),
        data=data,
        preprocess_train=functools.partial(_preprocess, spec.name),
        label_encoding="sparse",
        fit_kwargs={"epochs": EPOCHS, "batch_size": len(data)},
        application=spec.name,
        after_fit=functools.partial(_recalibrate, batch_size=len(data)),
    )


REGRESSION_EPOCHS = 30  # six photographs in one batch: 30 steps explain 0.98 to 0.998 of their variance (R2, seeds 0-4)


def regression_pipeline(seed: int = 0) -> Pipeline:
    """A correct regression pipeline: a small Conv-BatchNorm CNN with one linear unit regressing each
    of the six photographs' mean brightness (in standard units) with mean squared error.

    The photographs are 32x32 crops, the model `small_bn_cnn` with 16 filters (with 8, seed 3
    stalls at R2 0.72) and `Dense(1)` for its softmax, compiled with Adam 1e-2, mean squared error
    and mean absolute error, fit for 30 epochs on all six images as one batch, and its BatchNorm
    statistics recalibrated afterwards.

    Example:
        >>> check_overfit(regression_pipeline()).raise_if_failed()
    """
    data = make_tiny_images(classes=CLASSES, per_class=PER_CLASS, size=32, seed=seed, kind="photos")
    brightness = data.images.astype(np.float32).mean(axis=(1, 2, 3))
    targets = ((brightness - brightness.mean()) / brightness.std()).astype(np.float32)
    return Pipeline(
        name="photos-regression",
        build_model=_compiled_regression_cnn,
        data=(data.images, targets),
        preprocess_train=_scaled,
        fit_kwargs={"epochs": REGRESSION_EPOCHS, "batch_size": len(targets)},
        after_fit=functools.partial(_recalibrate, batch_size=len(targets)),
    )


def default_pipelines(
    models: Iterable[str], image_size: int | None = None, other_kinds: bool = False
) -> list[Pipeline]:
    """The built-in pipelines: one classifier for each of `models` (keras.applications names), and
    with `other_kinds` one pipeline of each other kind the checks judge (`regression_pipeline`).

    `pytest --pipeline-checks` checks these when a project declares no pipelines; the other kinds
    join the default models, not a `--pc-models` choice.
    """
    return [*(application_pipeline(name, image_size) for name in models), *([regression_pipeline()] * other_kinds)]


def _compiled_application(name: str, size: int):
    from pipeline_checks.model import compat
    from pipeline_checks.model.applications import build_application

    keras = compat.keras()
    # A fresh head, as fine-tuning adds one. (EfficientNet's own top initializes with
    # fan_out scaling, which at 3 classes starts the loss at 7x ln(3): a correct pipeline
    # should not fail the labels check on that.)
    base = build_application(name, input_shape=size, include_top=False, pooling="avg").model
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="predictions")(base.output)
    model = keras.Model(base.input, outputs, name=base.name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _compiled_regression_cnn(learning_rate: float = 1e-2, filters: int = 16):
    from pipeline_checks.model import compat
    from pipeline_checks.testing.small_models import small_bn_cnn

    keras = compat.keras()
    trunk = small_bn_cnn((32, 32, 3), classes=2, filters=filters)
    value = keras.layers.Dense(1, name="value")(trunk.layers[-2].output)  # one linear unit for the softmax
    model = keras.Model(trunk.input, value, name="regression_cnn")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    return model


def _scaled(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32) / 255.0


def _preprocess(name: str, images: np.ndarray) -> np.ndarray:
    return np.asarray(preprocess_input_for(name)(np.asarray(images, dtype=np.float32)))


def _recalibrate(model, x, batch_size: int) -> None:
    recalibrate_batchnorm(model, x, batch_size=batch_size)
