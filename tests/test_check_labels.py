"""check_labels: labels, class names, loss, outputs and the loss at initialization agree."""

import math
import re

import numpy as np
import pytest
from broken_pipelines.common import CLASSES, DATA, small_pipeline
from broken_pipelines.data import (
    CASES,
    VALIDATION,
    one_based_labels,
    one_hot_labels_with_sparse_crossentropy,
    raw_pixels_without_normalization,
    sparse_labels_with_categorical_crossentropy,
    validation_split_complete,
)

from pipeline_checks.model import compat
from pipeline_checks.checks import check_labels
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.testing.small_models import small_bn_cnn
from pipeline_checks.run.training import shared_run

IMAGES, LABELS = DATA.images.copy(), DATA.labels.copy()


def keras_evaluates(pipeline) -> float:
    raw = pipeline.raw_data()
    model = pipeline.fresh_model()
    return model.evaluate(pipeline.train_inputs(raw.images), pipeline.targets(raw), verbose=0, return_dict=True)["loss"]


@pytest.mark.parametrize("case", [c for c in CASES if "labels" in c.causes], ids=lambda case: case.pipeline().name)
def test_catches_broken_pipeline(pipeline_of, case):
    result = check_labels(pipeline_of(case.pipeline))
    assert not result.passed
    assert re.search(case.causes["labels"], str(result)), str(result)


@pytest.mark.parametrize("case", [c for c in CASES if "labels" not in c.causes], ids=lambda case: case.pipeline().name)
def test_passes_every_other_row_of_the_matrix(pipeline_of, case):
    result = check_labels(pipeline_of(case.pipeline))
    assert result.passed, str(result)


@pytest.mark.parametrize(
    "factory, summary",
    [
        (small_pipeline, "sparse labels in 0..2 for 3 classes, 3 outputs, loss sparse_categorical_crossentropy (from_logits=False), loss at initialization {loss} (ln 3 = 1.1)"),
        (validation_split_complete, "sparse labels in 0..2 for 3 classes, 3 outputs, loss sparse_categorical_crossentropy (from_logits=False), loss at initialization {loss} (ln 3 = 1.1); validation lists the same classes in the same order"),
    ],
    ids=["small-cnn", "validation-complete"],
)
def test_passes_correct_pipeline(pipeline_of, factory, summary):
    result = check_labels(pipeline_of(factory))
    assert result.passed, str(result)
    # The initial loss depends on the backend's random initializers (1.64 on TensorFlow, 1.51 on JAX):
    # assert that it is a plausible untrained loss, a little above ln 3, not one backend's number.
    initial = result.numbers["initial_loss"]
    assert math.log(3) < initial < 2 * math.log(3)
    assert result.summary == summary.format(loss=f"{initial:.3g}")


def compat_errors() -> tuple:
    """TensorFlow's runtime error under Keras 2, where the loss runs inside the traced step."""
    from pipeline_checks.model import compat

    if compat.is_keras3():
        return ()
    import tensorflow as tf

    return (tf.errors.InvalidArgumentError,)


@pytest.mark.parametrize(
    "factory, cause, keras_says",
    [
        (sparse_labels_with_categorical_crossentropy, "categorical_crossentropy does not match sparse labels: fit receives class indices of shape (12,)", r"`target` and `output` must have the same (rank|shape)|Shapes \(None, 1\) and \(None, 3\) are incompatible"),
        (one_hot_labels_with_sparse_crossentropy, "sparse_categorical_crossentropy does not match one-hot labels: fit receives one-hot targets of shape (12, 3)", r"must have rank \(ndim\) `target\.ndim - 1`|must have the same shape up until the last dimension|logits and labels must have the same first dimension"),
    ],
    ids=["sparse-labels-categorical-ce", "one-hot-labels-sparse-ce"],
)
def test_loss_and_encoding_mismatch_is_named_before_keras_raises(pipeline_of, factory, cause, keras_says):
    pipeline = pipeline_of(factory)
    result = check_labels(pipeline)
    assert not result.passed and result.summary == cause.split(":")[0]
    assert cause in result.details and "loss at initialization not measured" in result.details
    # Keras' wording differs per backend (TensorFlow compares ranks, JAX and torch shapes) and
    # Keras 2 raises from inside the traced step (InvalidArgumentError for sparse CE): match each.
    with pytest.raises((ValueError, *compat_errors()), match=keras_says):
        keras_evaluates(pipeline)


def test_one_based_labels_train_without_a_keras_error(pipeline_of):
    pipeline = pipeline_of(one_based_labels)
    assert math.isfinite(keras_evaluates(pipeline))
    result = check_labels(pipeline)
    assert "output 0 is never a target" in result.details
    assert result.numbers["data_labels"] == (1, 3) and result.numbers["output_width"] == 4 and result.numbers["classes"] == 3


def test_loss_at_initialization_is_the_shared_runs(pipeline_of):
    pipeline = pipeline_of(small_pipeline)
    assert check_labels(pipeline).numbers["initial_loss"] == shared_run(pipeline).initial_loss


def test_unnormalized_inputs_are_named_as_the_cause_of_a_huge_initial_loss(pipeline_of):
    result = check_labels(pipeline_of(raw_pixels_without_normalization))
    assert "the training inputs span [0, 255] and nothing in the model normalizes them" in result.details
    assert result.numbers["initial_loss"] > 3 * math.log(CLASSES)


def large_head():
    keras = compat.keras()
    base = small_bn_cnn((16, 16, 3), classes=CLASSES)
    head = keras.layers.Dense(CLASSES, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=100.0))
    model = keras.Model(base.input, head(base.layers[-2].output))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_head_initialized_large_is_named_as_the_cause():
    result = check_labels(small_pipeline("large-head", build_model=large_head))
    assert "its last layer starts with large weights" in result.details, str(result)
    assert result.numbers["head_gain"] > 3


def subclassed_logits():
    keras = compat.keras()

    class Logits(keras.Model):
        def __init__(self):
            super().__init__()
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(CLASSES)

        def call(self, x):
            return self.dense(self.pool(x))

    model = Logits()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_from_logits_is_judged_from_the_outputs_of_a_subclassed_model():
    result = check_labels(small_pipeline("subclassed-logits", build_model=subclassed_logits))
    assert result.summary.startswith("from_logits=False on outputs that are not probabilities"), str(result)
    assert result.numbers["outputs_are_probabilities"] is False


@pytest.mark.parametrize(
    "validation, summary",
    [
        ((VALIDATION[0], VALIDATION[1], tuple(reversed(VALIDATION[2]))), "validation_data orders the classes differently"),
        ((VALIDATION[0], VALIDATION[1], (*VALIDATION[2][:2], "patterns_09")), "class 'patterns_02' is missing from validation_data"),
        ((VALIDATION[0], np.where(VALIDATION[1] == 2, 3, VALIDATION[1]), (*VALIDATION[2], "patterns_03")), "class 'patterns_03' is only in validation_data"),
    ],
    ids=["reordered", "renamed", "extra-class"],
)
def test_class_order_across_splits(validation, summary):
    result = check_labels(small_pipeline("validation-differs", validation_data=validation))
    assert result.summary.startswith(summary), str(result)


def test_negative_labels_are_out_of_range():
    result = check_labels(small_pipeline("negative-labels", data=(DATA.images, DATA.labels - 1, DATA.class_names)))
    assert result.summary.startswith("data labels run -1..1 for 3 classes"), str(result)
    assert "loss at initialization not measured" in result.details


def test_raise_if_failed(pipeline_of):
    failing = check_labels(pipeline_of(one_based_labels))
    with pytest.raises(PipelineCheckFailure) as raised:
        failing.raise_if_failed()
    assert str(raised.value) == str(failing)
    assert str(raised.value).startswith("check labels FAILED on pipeline 'labels-1-based': data labels run 1..3 for 3 classes")
    passing = check_labels(pipeline_of(small_pipeline))
    assert passing.raise_if_failed() is passing


def test_leaves_the_data_unchanged(pipeline_of):
    pipeline = pipeline_of(validation_split_complete)
    check_labels(pipeline)
    assert np.array_equal(DATA.images, IMAGES) and np.array_equal(DATA.labels, LABELS)
    assert np.array_equal(pipeline.raw_validation_data().labels, VALIDATION[1])
    assert pipeline.fit_kwargs == {"epochs": 15, "batch_size": 4}


@pytest.mark.parametrize(
    "given, kwargs, error, message",
    [
        ("small-cnn", {}, TypeError, "checks take a pipeline_checks.Pipeline (name, build_model, data, ...); received: pipeline='small-cnn' of type str"),
        (small_pipeline(), {"seed": -1}, ValueError, "seed must be a non-negative integer; received: seed=-1"),
        (small_pipeline(), {"seed": 1.5}, ValueError, "seed must be a non-negative integer; received: seed=1.5"),
        (small_pipeline(), {"initial_loss_factor": 1}, ValueError, "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=1"),
        (small_pipeline(), {"initial_loss_factor": 0.5}, ValueError, "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=0.5"),
        (small_pipeline(), {"initial_loss_factor": math.inf}, ValueError, "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=inf"),
        (small_pipeline(), {"initial_loss_factor": "3"}, ValueError, "initial_loss_factor must be a number greater than 1; received: initial_loss_factor='3'"),
        (small_pipeline(), {"initial_loss_factor": True}, ValueError, "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=True"),
    ],
    ids=["pipeline-name", "seed-negative", "seed-float", "factor-one", "factor-below-one", "factor-infinite", "factor-string", "factor-bool"],
)
def test_invalid_arguments(given, kwargs, error, message):
    with pytest.raises(error) as raised:
        check_labels(given, **kwargs)
    assert str(raised.value) == message
