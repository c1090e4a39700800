"""The bug reports that motivate pipeline-checks, reproduced as plain functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline_checks.model.applications import build_application
from pipeline_checks.scenarios.legacy_batchnorm import legacy_batchnorm_class
from pipeline_checks.testing.datasets import TinyImageDataset, make_tiny_images


@dataclass(frozen=True)
class FirstReport:
    """The first report's pipeline after training, and what each mode says about it."""

    model: Any
    inputs: np.ndarray
    data: TinyImageDataset
    history: Any
    fit_accuracy: float
    evaluate_accuracy: float
    predicted: np.ndarray
    train_mode_predicted: np.ndarray


UNTIL_FIT = 20  # most epochs `first_report` trains while waiting for fit to say 100%


def first_report(seed: int = 0, epochs: int | None = None, data: TinyImageDataset | None = None) -> FirstReport:
    """ResNet50 (weights=None) on three photographs, one per class: fit says 100%, evaluate 33%.

    BatchNormalization normalizes with batch statistics in training but with moving
    averages at inference; after a handful of updates at momentum 0.99 those averages are
    still >90% their initial values, so inference sees unnormalized activations.

    Args:
        seed: seeds the images and Keras (`keras.utils.set_random_seed`).
        epochs: training epochs, one batch of three images each; default: until fit's
            accuracy reaches 1 (and the weights it ends with classify the three images in training
            mode), as the report's user trained (at most 20; seed 0 takes 4
            on Keras 3 and 7-8 on Keras 2, whose initializers draw other weights).
        data: the images to train on; default: three photographs at 32x32.
    """
    from pipeline_checks.model import compat

    compat.set_random_seed(seed)
    if data is None:
        data = make_tiny_images(classes=3, per_class=1, size=32, kind="photos", seed=seed)
    model, preprocess_input = build_application("ResNet50", classes=data.classes, input_shape=data.size)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    inputs = np.asarray(preprocess_input(data.images.astype("float32")))
    labels = data.one_hot_labels
    keras, callbacks = compat.keras(), []
    if epochs is None:
        epochs = UNTIL_FIT

        def stop_once_fit(epoch, logs):
            # fit's accuracy is measured before its step; on torch that step can still undo one image,
            # so also wait until the weights fit ends with classify all three in training mode.
            model.stop_training = (
                logs["accuracy"] >= 1.0 and _train_mode_classes(model, inputs).tolist() == data.labels.tolist()
            )

        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=stop_once_fit))
    history = model.fit(
        inputs, labels, epochs=epochs, batch_size=len(data), shuffle=False, verbose=0, callbacks=callbacks
    )
    _, evaluate_accuracy = model.evaluate(inputs, labels, batch_size=len(data), verbose=0)
    predicted = model.predict(inputs, batch_size=len(data), verbose=0).argmax(axis=-1)
    train_mode = _train_mode_classes(model, inputs)
    return FirstReport(
        model=model,
        inputs=inputs,
        data=data,
        history=history,
        fit_accuracy=float(history.history["accuracy"][-1]),
        evaluate_accuracy=float(evaluate_accuracy),
        predicted=predicted,
        train_mode_predicted=train_mode,
    )


def _train_mode_classes(model, inputs) -> np.ndarray:
    """The classes a training-mode pass predicts, with BN statistics left as they were."""
    from pipeline_checks.model.state import train_mode_outputs

    return train_mode_outputs(model, inputs).argmax(axis=-1)


SECOND_REPORT_SIZE = 75  # InceptionV3's smallest input


@dataclass(frozen=True)
class SecondReport:
    """The second report's fine-tune after fit, and what fit and evaluate say about it.

    Attributes:
        pipeline: the fine-tuning pipeline (its shared run is the fit below).
        model: the fine-tuned model: InceptionV3 base (frozen) and the top model.
        batchnorm_class: the base's BatchNormalization class name.
        fit_accuracy: fit's accuracy in its last epoch (training mode).
        evaluate_accuracy: evaluate's accuracy on the same images, after fit.
    """

    pipeline: Any
    model: Any
    batchnorm_class: str
    fit_accuracy: float
    evaluate_accuracy: float


def second_report_pipeline(legacy_batchnorm: bool = True, seed: int = 0):
    """The second report as a `Pipeline`: fine-tuning a frozen InceptionV3 with a top model
    trained on its bottleneck features, fit with SGD 1e-4, momentum 0.9.

    No pretrained weights can be downloaded here, so the base is InceptionV3 with
    `weights=None` whose BN moving statistics are set from the twelve training images
    (as ImageNet training leaves them converged). The top model (softmax Dense) is trained on
    the base's features in inference mode (the bottleneck features) to accuracy 1. Then base
    and top are stacked, the base frozen, and the whole fine-tuned on the same images.

    Args:
        legacy_batchnorm: build the base with `legacy_batchnorm_class()` (Keras 2's
            V1 BatchNormalization, or its port to Keras 3), which runs frozen in training
            mode: fit sees batch statistics the top model never saw and its accuracy
            collapses, while evaluate stays at 1. False: Keras' own BatchNormalization,
            which runs frozen in inference mode (the correct twin).
        seed: seeds the images and the models.
    """
    from pipeline_checks.model.applications import preprocess_input_for
    from pipeline_checks.pipelines.pipeline import Pipeline

    data = make_tiny_images(classes=3, per_class=4, size=SECOND_REPORT_SIZE, kind="photos", seed=seed)
    preprocess = preprocess_input_for("InceptionV3")
    return Pipeline(
        name="second-report" + ("" if legacy_batchnorm else "-keras-batchnorm"),
        build_model=lambda: _frozen_inception_fine_tune(data, preprocess, legacy_batchnorm),
        data=data,
        preprocess_train=lambda images: np.asarray(preprocess(np.asarray(images, dtype="float32"))),
        label_encoding="one_hot",
        fit_kwargs={"epochs": 3, "batch_size": 4},
        application="InceptionV3",
    )


def second_report(legacy_batchnorm: bool = True, seed: int = 0) -> SecondReport:
    """Fine-tune `second_report_pipeline(legacy_batchnorm, seed)` and measure fit and evaluate.

    The fit is the pipeline's shared run, so checks on `report.pipeline` reuse it.
    """
    from pipeline_checks.run.training import shared_run

    pipeline = second_report_pipeline(legacy_batchnorm, seed)
    run = shared_run(pipeline, seed)
    _, evaluate_accuracy = run.model.evaluate(run.x_infer, run.y_train, batch_size=pipeline.batch_size, verbose=0)
    base = run.model.get_layer("inception_v3")
    batchnorm = next(layer for layer in base.layers if "BatchNormalization" in type(layer).__name__)
    return SecondReport(
        pipeline=pipeline,
        model=run.model,
        batchnorm_class=f"{type(batchnorm).__module__}.{type(batchnorm).__name__}",
        fit_accuracy=float(run.history.history["accuracy"][-1]),
        evaluate_accuracy=float(evaluate_accuracy),
    )


def _frozen_inception_fine_tune(data: TinyImageDataset, preprocess, legacy_batchnorm: bool):
    from pipeline_checks.batchnorm.recalibration import recalibrate_batchnorm
    from pipeline_checks.model import compat

    keras = compat.keras()
    x = np.asarray(preprocess(data.images.astype("float32")))
    base = build_application("InceptionV3", input_shape=data.size, include_top=False, pooling="avg").model
    recalibrate_batchnorm(base, x, batch_size=len(x))  # stands in for converged pretrained statistics
    if legacy_batchnorm:
        base = _with_batchnorm_class(base, legacy_batchnorm_class())
    features = base.predict(x, batch_size=len(x), verbose=0)
    top = keras.Sequential(
        [keras.Input(features.shape[1:]), keras.layers.Dense(data.classes, activation="softmax")], name="top"
    )
    top.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy", metrics=["accuracy"])
    top.fit(features, data.one_hot_labels, epochs=100, batch_size=len(x), verbose=0)
    base.trainable = False
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, top(base(inputs)), name="fine_tune")
    model.compile(
        optimizer=keras.optimizers.SGD(1e-4, momentum=0.9), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def _with_batchnorm_class(model, batchnorm_class: type):
    """A copy of `model` whose BatchNormalization layers are `batchnorm_class`, same weights."""
    from pipeline_checks.model import compat

    keras = compat.keras()

    def clone(layer):
        cls = batchnorm_class if isinstance(layer, keras.layers.BatchNormalization) else type(layer)
        return cls.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
