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


def default_pipelines(models: Iterable[str], image_size: int | None = None) -> list[Pipeline]:
    """The built-in pipelines for `models` (keras.applications names): the suite's default.

    `pytest --pipeline-checks` checks these when a project declares no pipelines.
    """
    return [application_pipeline(name, image_size) for name in models]


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


def _preprocess(name: str, images: np.ndarray) -> np.ndarray:
    return np.asarray(preprocess_input_for(name)(np.asarray(images, dtype=np.float32)))


def _recalibrate(model, x, batch_size: int) -> None:
    recalibrate_batchnorm(model, x, batch_size=batch_size)
