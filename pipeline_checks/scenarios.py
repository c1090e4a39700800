"""The bug reports that motivate pipeline-checks, reproduced as plain functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline_checks.applications import build_application
from pipeline_checks.datasets import TinyImageDataset, make_tiny_images


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


def first_report(seed: int = 0, epochs: int = 5, data: TinyImageDataset | None = None) -> FirstReport:
    """ResNet50 (weights=None) on three photographs, one per class: fit says 100%, evaluate 33%.

    BatchNormalization normalizes with batch statistics in training but with moving
    averages at inference; after `epochs` updates at momentum 0.99 those averages are
    still ~95% their initial values, so inference sees unnormalized activations.

    Args:
        seed: seeds the images and Keras (`keras.utils.set_random_seed`).
        epochs: training epochs, one batch of three images each.
        data: the images to train on; default: three photographs at 32x32.
    """
    from pipeline_checks import compat

    compat.set_random_seed(seed)
    if data is None:
        data = make_tiny_images(classes=3, per_class=1, size=32, kind="photos", seed=seed)
    model, preprocess_input = build_application("ResNet50", classes=data.classes, input_shape=data.size)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    inputs = np.asarray(preprocess_input(data.images.astype("float32")))
    labels = data.one_hot_labels
    history = model.fit(inputs, labels, epochs=epochs, batch_size=len(data), shuffle=False, verbose=0)
    _, evaluate_accuracy = model.evaluate(inputs, labels, batch_size=len(data), verbose=0)
    predicted = model.predict(inputs, batch_size=len(data), verbose=0).argmax(axis=-1)
    train_mode = np.asarray(model(inputs, training=True)).argmax(axis=-1)
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
