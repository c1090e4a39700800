"""The correct small pipeline every broken one is a variation of, and the Case record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from pipeline_checks import make_tiny_images, recalibrate_batchnorm
from pipeline_checks.pipeline import Pipeline
from pipeline_checks.small_models import small_bn_cnn

CLASSES = 3
DATA = make_tiny_images(classes=CLASSES, per_class=4, size=16, seed=0)


@dataclass(frozen=True)
class Case:
    """One row of the detection matrix.

    Attributes:
        pipeline: builds the pipeline (fresh each call).
        caught_by: the checks that must fail on it, exactly; empty for a correct twin.
        cause: a regular expression each of those checks' messages must match.
        bug: the bug in a few words, for the matrix table.
    """

    pipeline: Callable[[], Pipeline]
    caught_by: frozenset[str]
    cause: str
    bug: str

    @property
    def id(self) -> str:
        return self.pipeline().name


def correct(pipeline: Callable[[], Pipeline], bug: str = "none (correct twin)") -> Case:
    return Case(pipeline, frozenset(), "", bug)


def broken(pipeline: Callable[[], Pipeline], caught_by: str | set[str], cause: str, bug: str) -> Case:
    names = {caught_by} if isinstance(caught_by, str) else set(caught_by)
    return Case(pipeline, frozenset(names), cause, bug)


def compiled_cnn(input_shape=(16, 16, 3), classes=CLASSES, learning_rate=0.01, loss="sparse_categorical_crossentropy", **kwargs):
    from pipeline_checks import compat

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
    return dataclasses.replace(pipeline, **changes) if changes else pipeline
