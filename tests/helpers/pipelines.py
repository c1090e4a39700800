"""The correct small pipeline every broken one is a variation of: a Conv-BN CNN on 12 pattern images."""

from __future__ import annotations

import dataclasses

from pipeline_checks import make_tiny_images, recalibrate_batchnorm
from pipeline_checks.pipelines.pipeline import Pipeline
from pipeline_checks.testing.small_models import small_bn_cnn

CLASSES = 3
DATA = make_tiny_images(classes=CLASSES, per_class=4, size=16, seed=0)


def compiled_cnn(
    input_shape=(16, 16, 3), classes=CLASSES, learning_rate=0.01, loss="sparse_categorical_crossentropy", **kwargs
):
    from pipeline_checks.model import compat

    keras = compat.keras()
    model = small_bn_cnn(input_shape, classes=classes, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    return model


def recalibrate_after_fit(model, x):
    """Precise BN as the pipeline's last step: the correct pipelines do it before deployment."""
    recalibrate_batchnorm(model, x, batch_size=4)


def small_pipeline(name: str = "small-cnn", **changes) -> Pipeline:
    """The correct pipeline: a Conv-BN CNN on 12 pattern images, pixels scaled to [0, 1]."""
    pipeline = Pipeline(
        name=name,
        build_model=compiled_cnn,
        data=DATA,
        preprocess_train=lambda images: images.astype("float32") / 255.0,
        fit_kwargs={"epochs": 15, "batch_size": 4},
        after_fit=recalibrate_after_fit,
    )
    if "preprocess_train" in changes:
        changes.setdefault("preprocess_infer", None)  # None: the inference path follows the new training one
    return dataclasses.replace(pipeline, **changes) if changes else pipeline
