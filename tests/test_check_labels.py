"""check_labels: labels, class names, loss, outputs and the loss at initialization agree."""

import functools
import math

import numpy as np
import pytest
from broken_pipelines import families, labels_heads
from broken_pipelines.common import CLASSES, DATA, small_pipeline
from broken_pipelines.data import (
    VALIDATION,
    one_based_labels,
    one_hot_labels_with_sparse_crossentropy,
    raw_pixels_without_normalization,
    sparse_labels_with_categorical_crossentropy,
    validation_split_complete,
)
from broken_pipelines.dataset_code import integer_dataset_validation_alike, integer_dataset_validation_reversed

from pipeline_checks import Pipeline
from pipeline_checks.checks import check_labels, label_findings
from pipeline_checks.checks.label_permutation import comparison_of as comparison
from pipeline_checks.checks.label_permutation import predicted_classes
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.model import compat
from pipeline_checks.model.heads import SUMS_TO_ONE
from pipeline_checks.model.losses import loss_facts
from pipeline_checks.run.training import shared_run
from pipeline_checks.testing.small_models import small_bn_cnn

IMAGES, LABELS = DATA.images.copy(), DATA.labels.copy()
SMALL_CNN_SUMMARY = (
    "sparse labels in 0..2 for 3 classes, 3 outputs, loss sparse_categorical_crossentropy (from_logits=False), "
    "loss at initialization {loss} (ln 3 = 1.1)"
)

# TensorFlow 2.12's CPU FusedBatchNormV3 (Keras 2) has no bfloat16 kernel: those models raise in training mode.
NEEDS_BFLOAT16_BATCHNORM = pytest.mark.skipif(not compat.is_keras3(), reason="Keras 2's CPU BatchNorm has no bfloat16")


def keras_evaluates(pipeline) -> float:
    raw = pipeline.raw_data()
    model = pipeline.fresh_model()
    return model.evaluate(pipeline.train_inputs(raw.images), pipeline.targets(raw), verbose=0, return_dict=True)["loss"]


@pytest.mark.parametrize(
    "factory, summary",
    [
        (
            small_pipeline,
            SMALL_CNN_SUMMARY,
        ),
        (
            validation_split_complete,
            SMALL_CNN_SUMMARY
            + "; validation lists the same classes in the same order, and the trained model predicts its labels as "
            "training's",
        ),
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
        (
            sparse_labels_with_categorical_crossentropy,
            "categorical_crossentropy does not match sparse labels: fit receives class indices of shape (12,)",
            r"`target` and `output` must have the same (rank|shape)"
            r"|Shapes \(None, 1\) and \(None, 3\) are incompatible",
        ),
        (
            one_hot_labels_with_sparse_crossentropy,
            "sparse_categorical_crossentropy does not match one-hot labels: "
            "fit receives one-hot targets of shape (12, 3)",
            r"must have rank \(ndim\) `target\.ndim - 1`|must have the same shape up until the last dimension"
            r"|logits and labels must have the same first dimension",
        ),
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
    assert (
        result.numbers["data_labels"] == (1, 3)
        and result.numbers["output_width"] == 4
        and result.numbers["classes"] == 3
    )


def test_loss_at_initialization_is_the_shared_runs(pipeline_of):
    pipeline = pipeline_of(small_pipeline)
    assert check_labels(pipeline).numbers["initial_loss"] == shared_run(pipeline).initial_loss


def test_unnormalized_inputs_are_named_as_the_cause_of_a_huge_initial_loss(pipeline_of):
    result = check_labels(pipeline_of(raw_pixels_without_normalization))
    assert (
        "the training inputs span [0, 255] and no layer in the model rescales or normalizes them; divided by 255"
        in result.details
    )
    assert result.numbers["initial_loss"] > 3 * math.log(CLASSES)
    # The cause is proven, not guessed: the same model on the inputs / 255 starts near ln 3.
    assert result.numbers["initial_loss_cause"] == "input_scale"
    assert result.numbers["initial_data_loss_on_scaled_inputs"] <= 3 * math.log(CLASSES)


def large_head():
    keras = compat.keras()
    base = small_bn_cnn((16, 16, 3), classes=CLASSES)
    head = keras.layers.Dense(
        CLASSES, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=100.0)
    )
    model = keras.Model(base.input, head(base.layers[-2].output))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_head_initialized_large_is_named_but_not_failed():
    # keras.applications.EfficientNet's own head starts this confident: an initialization, not a labels bug.
    result = check_labels(small_pipeline("large-head", build_model=large_head))
    assert result.passed, str(result)
    assert "its last layer starts with large weights" in result.details, str(result)
    assert result.numbers["head_gain"] > 3 and result.numbers["initial_loss_cause"] == "head_gain"


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
        (
            (VALIDATION[0], VALIDATION[1], tuple(reversed(VALIDATION[2]))),
            "validation_data orders the classes differently",
        ),
        (
            (VALIDATION[0], VALIDATION[1], (*VALIDATION[2][:2], "patterns_09")),
            "class 'patterns_02' is missing from validation_data",
        ),
        (
            (VALIDATION[0], np.where(VALIDATION[1] == 2, 3, VALIDATION[1]), (*VALIDATION[2], "patterns_03")),
            "class 'patterns_03' is only in validation_data",
        ),
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
    assert str(raised.value).startswith(
        "check labels FAILED on pipeline 'labels-1-based': data labels run 1..3 for 3 classes"
    )
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
        (
            small_pipeline(),
            {"initial_loss_factor": 1},
            ValueError,
            "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=1",
        ),
        (
            small_pipeline(),
            {"initial_loss_factor": 0.5},
            ValueError,
            "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=0.5",
        ),
        (
            small_pipeline(),
            {"initial_loss_factor": math.inf},
            ValueError,
            "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=inf",
        ),
        (
            small_pipeline(),
            {"initial_loss_factor": "3"},
            ValueError,
            "initial_loss_factor must be a number greater than 1; received: initial_loss_factor='3'",
        ),
        (
            small_pipeline(),
            {"initial_loss_factor": True},
            ValueError,
            "initial_loss_factor must be a number greater than 1; received: initial_loss_factor=True",
        ),
    ],
    ids=[
        "factor-one",
        "factor-below-one",
        "factor-infinite",
        "factor-string",
        "factor-bool",
    ],
)
def test_invalid_arguments(given, kwargs, error, message):
    """`pipeline` and `seed` are checked for every family alike: tests/test_check_contract.py."""
    with pytest.raises(error) as raised:
        check_labels(given, **kwargs)
    assert str(raised.value) == message


# -- regularization in the loss ------------------------------------------------------------


def test_the_data_loss_is_judged_apart_from_l2_regularization(pipeline_of):
    """L2(10) makes the compiled loss at initialization about 360 on the residual net: the data loss
    is what says ln 3."""
    pipeline = pipeline_of(labels_heads.residual_three_classes_l2)
    result = check_labels(pipeline)
    assert result.passed, str(result)
    numbers = result.numbers
    assert numbers["initial_loss"] == shared_run(pipeline).initial_loss  # the compiled loss, as the shared run sees it
    assert numbers["initial_regularization_loss"] > 100 * math.log(3)
    assert numbers["initial_data_loss"] == pytest.approx(
        numbers["initial_loss"] - numbers["initial_regularization_loss"]
    )
    assert (
        math.log(3) < numbers["initial_data_loss"] < numbers["initial_regularization_loss"] / 20
    )  # 2.4 on TensorFlow, 4.3 on JAX
    assert f"+ regularization {numbers['initial_regularization_loss']:.3g} (ln 3 = 1.1)" in result.summary
    assert "adds regularization" in result.details


def test_activity_regularization_of_the_forward_pass_is_subtracted_too():
    build = functools.partial(families.regularized_cnn, l2=0.0, activity_l2=100.0)
    result = check_labels(small_pipeline("activity-l2", build_model=build))
    assert result.passed, str(result)
    assert result.numbers["initial_regularization_loss"] > 0
    assert result.numbers["initial_data_loss"] < 3 * math.log(3)


# -- binary and multi-label heads ----------------------------------------------------------


@pytest.mark.parametrize(
    "factory, from_logits",
    [(labels_heads.residual_binary_l2, False), (labels_heads.xception_binary_logit, True)],
    ids=["sigmoid-unit", "logit-unit"],
)
def test_binary_heads_pass_with_ln_2_as_the_uniform_loss(factory, from_logits):
    result = check_labels(factory())
    assert result.passed, str(result)
    assert result.numbers["output_width"] == 1 and result.numbers["expected_initial_loss"] == pytest.approx(math.log(2))
    assert result.numbers["outputs_are_probabilities"] is (not from_logits)
    assert (
        "sparse labels in 0..1 for 2 classes, 1 output (binary: one unit for 2 classes), loss binary_crossentropy"
        in result.summary
    )
    assert f"(from_logits={from_logits})" in result.summary


BINARY = labels_heads.BINARY_16


def one_unit(activation=None, loss="binary_crossentropy", classes=1):
    """The small CNN's body with `classes` units of `activation` as the head."""
    keras = compat.keras()
    base = small_bn_cnn((16, 16, 3), classes=2)
    outputs = keras.layers.Dense(classes, activation=activation)(base.layers[-2].output)
    model = keras.Model(base.input, outputs)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def binary_pipeline(name, build, **changes):
    return small_pipeline(name, build_model=build, **{"data": BINARY, **changes})


def test_from_logits_true_on_a_sigmoid_unit_applies_sigmoid_twice():
    keras = compat.keras()
    build = functools.partial(one_unit, "sigmoid", keras.losses.BinaryCrossentropy(from_logits=True))
    result = check_labels(binary_pipeline("sigmoid-from-logits", build))
    assert result.summary.startswith("from_logits=True on outputs that are already probabilities"), str(result)
    assert "the loss applies sigmoid again" in result.details and "last layer activation sigmoid" in result.details


def test_from_logits_false_on_a_linear_unit_is_named_even_where_its_outputs_lie_in_0_1():
    """A fresh unit after ReLU features may start with every logit in [0, 1]: its linear activation decides."""
    result = check_labels(binary_pipeline("logit-from-logits-false", functools.partial(one_unit, None)))
    assert result.summary.startswith("from_logits=False on outputs that are not probabilities"), str(result)
    assert (
        "BinaryCrossentropy(from_logits=True)" in result.details and "BinaryAccuracy(threshold=0.0)" in result.details
    )


def subclassed_unit(activation):
    keras = compat.keras()

    class Unit(keras.Model):
        def __init__(self):
            super().__init__()
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(
                1, activation=activation, bias_initializer=keras.initializers.Constant(0.5), kernel_initializer="zeros"
            )

        def call(self, x):
            return self.dense(self.pool(x))

    model = Unit()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def test_from_logits_is_not_judged_where_outputs_in_0_1_come_from_an_unknown_layer():
    """A subclassed model's one output of 0.5 everywhere could be a probability or a logit: a note, no failure."""
    result = check_labels(binary_pipeline("subclassed-unit", functools.partial(subclassed_unit, None)))
    assert result.passed, str(result)
    assert "from_logits not judged" in result.details
    assert result.numbers["outputs_are_probabilities"] is None


def test_multi_label_sigmoid_units_are_checked_one_vs_rest():
    """Three sigmoid units, binary cross-entropy and one 0/1 target per unit: a multi-label head, not a bug."""
    build = functools.partial(one_unit, "sigmoid", "binary_crossentropy", classes=3)
    result = check_labels(small_pipeline("multi-label-sigmoid", build_model=build, label_encoding="one_hot"))
    assert result.passed, str(result)
    assert "3 independent outputs (multi-label, one-vs-rest)" in result.summary
    assert result.numbers["expected_initial_loss"] == pytest.approx(math.log(2))
    assert "checked as one-vs-rest (multi-label) units" in result.details


def test_binary_crossentropy_on_a_two_unit_softmax_is_the_binary_loss():
    build = functools.partial(one_unit, "softmax", "binary_crossentropy", classes=2)
    result = check_labels(binary_pipeline("two-unit-softmax-bce", build, label_encoding="one_hot"))
    assert result.passed, str(result)
    assert "2 softmax outputs scored as binary ones" in result.summary


@pytest.mark.parametrize(
    "activation, classes, encoding, summary, keras_says",
    [
        (
            "sigmoid",
            3,
            "sparse",
            "binary_crossentropy on 3 outputs with sparse labels",
            r"must have the same (rank|shape)",
        ),
        (
            "sigmoid",
            1,
            "one_hot",
            "binary_crossentropy on a single output with one-hot targets of shape (12, 2)",
            r"must have the same (rank|shape)|[Ii]ncompatible",
        ),
    ],
    ids=["bce-sparse-on-3-units", "bce-one-hot-on-1-unit"],
)
def test_binary_crossentropy_whose_targets_do_not_fit_the_outputs(activation, classes, encoding, summary, keras_says):
    data = (DATA.images, DATA.labels, DATA.class_names) if classes == 3 else BINARY
    build = functools.partial(one_unit, activation, "binary_crossentropy", classes=classes)
    pipeline = small_pipeline("bce-mismatch", build_model=build, data=data, label_encoding=encoding)
    result = check_labels(pipeline)
    assert result.summary == summary, str(result)
    assert "loss at initialization not measured: the loss does not fit the head" in result.details
    if compat.is_keras3():  # Keras 2 broadcasts instead of raising
        with pytest.raises(ValueError, match=keras_says):
            keras_evaluates(pipeline)


def sparse_crossentropy_on_one_logit():
    keras = compat.keras()
    return labels_heads.recompiled(
        families.xception_style_binary, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )


def test_sparse_categorical_crossentropy_on_one_unit():
    """Not a matrix row: Keras on TensorFlow and torch raise at the first step, so every training check would."""
    pipeline = Pipeline(
        name="sparse-ce-on-1-logit", build_model=sparse_crossentropy_on_one_logit, data=labels_heads.BINARY_32
    )
    result = check_labels(pipeline)
    assert result.summary == "sparse_categorical_crossentropy on a single output for 2 classes", str(result)
    assert "the images of class 1 have no score" in result.details
    assert "compile with loss='binary_crossentropy'" in result.details
    if compat.backend() == "tensorflow":
        with pytest.raises(
            compat.tensorflow().errors.InvalidArgumentError,
            match=r"label value of 1 which is outside the valid range of \[0, 1\)",
        ):
            keras_evaluates(pipeline)


def test_one_class_name_is_not_a_classifier():
    data = (BINARY.images, np.zeros(len(BINARY.labels), dtype=int), ("only",))
    result = check_labels(binary_pipeline("one-class", functools.partial(one_unit, "sigmoid"), data=data))
    assert result.summary == "training labels cover 1 of 1 classes (0)", str(result)
    assert "class_names has only 1 name, and a classifier needs at least 2 classes" in result.details


def test_coverage_is_not_judged_on_labels_out_of_range(pipeline_of):
    result = check_labels(pipeline_of(one_based_labels))
    assert "training labels cover" not in str(result) and "data_classes_present" not in result.numbers


@pytest.mark.parametrize(
    "given, name, kind, from_logits",
    [
        ("binary_crossentropy", "binary_crossentropy", "binary", False),
        ("bce", "binary_crossentropy", "binary", False),
        ("BinaryCrossentropy", "binary_crossentropy", "binary", False),
        ("CategoricalCrossentropy", "categorical_crossentropy", "one_hot", False),
        ("mse", "mse", None, None),
    ],
)
def test_loss_facts_from_strings(given, name, kind, from_logits):
    facts = loss_facts(given)
    assert (facts.name, facts.kind, facts.from_logits) == (name, kind, from_logits)


def test_loss_facts_from_keras_objects():
    keras = compat.keras()
    assert loss_facts(keras.losses.BinaryCrossentropy(from_logits=True)).kind == "binary"
    assert loss_facts(keras.losses.BinaryCrossentropy(from_logits=True)).from_logits is True
    assert loss_facts(keras.losses.binary_crossentropy).kind == "binary"
    assert loss_facts(keras.losses.SparseCategoricalCrossentropy()).kind == "sparse"
    focal = loss_facts(keras.losses.BinaryFocalCrossentropy())
    assert focal.kind == "binary" and not focal.crossentropy  # its uniform loss is not ln 2


# -- the loss at initialization: a cause, or no failure ------------------------------------


def test_a_high_initial_loss_without_a_cause_is_a_note_not_a_failure(pipeline_of):
    """A residual net's identity shortcuts add up: it can start above 3x ln 3 with nothing wrong.
    With the bound at 1.01 x ln 3, its data loss lies above it on every backend: no cause shows, so no failure."""
    result = check_labels(pipeline_of(labels_heads.residual_three_classes_l2), initial_loss_factor=1.01)
    assert result.numbers["initial_data_loss"] > 1.01 * math.log(3)
    assert result.passed, str(result)
    assert result.numbers["initial_loss_cause"] is None
    assert "but no cause shows (from_logits fits the outputs, the last layer's gain is" in result.details


def test_inputs_are_not_blamed_where_the_model_rescales_them_itself():
    """xception_style_binary takes 0..255 pixels into its own Rescaling(1/255): dividing them again proves nothing."""
    result = check_labels(labels_heads.xception_binary_logit(), initial_loss_factor=1.01)
    assert result.passed, str(result)
    assert "initial_data_loss_on_scaled_inputs" not in result.numbers


# -- issue 36: a softmax head in bfloat16, a softmax over one unit, a regression loss ----------


@NEEDS_BFLOAT16_BATCHNORM
def test_a_softmax_head_computed_in_bfloat16_is_not_called_logits():
    """Every layer in mixed_bfloat16: the rows sum to 1 only within bfloat16's rounding, beyond float32's 1e-3."""
    keras = compat.keras()
    result = check_labels(labels_heads.mixed_bfloat16_cnn())
    assert result.passed, str(result)
    assert result.numbers["output_precision"] == "bfloat16" and result.numbers["outputs_are_probabilities"]
    low, high = result.numbers["output_row_sums"]
    assert max(1 - low, high - 1) > SUMS_TO_ONE  # float32's tolerance would call them logits
    assert keras.mixed_precision.global_policy().name == "float32"  # the row set each layer's policy, not the global


@NEEDS_BFLOAT16_BATCHNORM
def test_logits_computed_in_bfloat16_are_still_named():
    build = functools.partial(
        labels_heads.in_mixed_bfloat16, functools.partial(one_unit, None, "sparse_categorical_crossentropy", classes=3)
    )
    result = check_labels(small_pipeline("bfloat16-logits", build_model=build))
    assert result.summary.startswith("from_logits=False on outputs that are not probabilities"), str(result)
    assert "computed in bfloat16, last layer activation linear" in result.details


ONE_UNIT_SOFTMAX = "a softmax over the single output unit: the model outputs 1.0 for every image"


@pytest.mark.parametrize(
    "loss, encoding, beneath",
    [
        ("binary_crossentropy", "sparse", True),
        ("mean_squared_error", "sparse", False),
        ("categorical_crossentropy", "one_hot", True),
    ],
    ids=["binary-ce", "mse", "categorical-ce"],
)
def test_a_softmax_over_one_unit_is_named_whatever_the_loss(loss, encoding, beneath):
    build = functools.partial(one_unit, "softmax", loss)
    result = check_labels(binary_pipeline("one-unit-softmax", build, label_encoding=encoding))
    assert result.summary == ONE_UNIT_SOFTMAX, str(result)  # the only finding: no regression or categorical one
    assert "exp(z) / exp(z) = 1 whatever the input (outputs in [1, 1], last layer activation softmax)" in result.details
    assert ("computes " + loss + " from the logit beneath the softmax" in result.details) is beneath
    assert "Fix: for two classes and one unit use activation='sigmoid' with loss='binary_crossentropy'" in str(result)
    assert "loss at initialization not" in result.details


def test_a_softmax_over_one_unit_of_a_subclassed_model_is_read_from_its_outputs():
    """No layer names the activation: outputs of exactly 1.0 on the batch and on zeros show it."""
    result = check_labels(binary_pipeline("subclassed-one-unit-softmax", functools.partial(subclassed_unit, "softmax")))
    assert result.summary == ONE_UNIT_SOFTMAX, str(result)


def test_one_sigmoid_unit_the_fix_of_a_one_unit_softmax_passes():
    result = check_labels(labels_heads.sigmoid_over_one_unit_cnn())
    assert result.passed, str(result)
    assert "1 output (binary: one unit for 2 classes), loss binary_crossentropy" in result.summary


@pytest.mark.parametrize(
    "activation, classes, loss, encoding, summary, seen, fix",
    [
        (
            "softmax",
            3,
            "mean_squared_error",
            "one_hot",
            "mean_squared_error on a 3-unit softmax with class labels",
            "mean_squared_error scores each probability's distance from its 0/1 target as a number",
            "compile with loss='categorical_crossentropy', the cross-entropy for a 3-unit softmax and one-hot labels",
        ),
        (
            "softmax",
            3,
            "mse",
            "sparse",
            "mse on a 3-unit softmax with class labels",
            "mse broadcasts it against each of the 3 outputs: every probability is trained towards the class index "
            "itself (0..2)",
            "compile with loss='sparse_categorical_crossentropy'",
        ),
        (
            "sigmoid",
            1,
            "mean_absolute_error",
            "sparse",
            "mean_absolute_error on a sigmoid unit with class labels",
            "gradient through the sigmoid is scaled by the sigmoid's derivative",
            "compile with loss='binary_crossentropy', the cross-entropy for a sigmoid unit and sparse labels",
        ),
    ],
    ids=["mse-softmax-one-hot", "mse-softmax-sparse", "mae-sigmoid"],
)
def test_a_regression_loss_on_a_classifier_head_is_named(activation, classes, loss, encoding, summary, seen, fix):
    data = DATA if classes == 3 else BINARY
    build = functools.partial(one_unit, activation, loss, classes=classes)
    result = check_labels(small_pipeline("regression-loss", build_model=build, data=data, label_encoding=encoding))
    assert result.summary == summary, str(result)
    assert seen in result.details and fix in result.details
    assert "learning rate" not in result.summary


@pytest.mark.parametrize(
    "activation, loss", [(None, "mean_squared_error"), ("softmax", "categorical_crossentropy")], ids=["linear", "ce"]
)
def test_a_regression_loss_on_a_linear_head_and_the_cross_entropy_fix_pass(activation, loss):
    build = functools.partial(one_unit, activation, loss, classes=3)
    result = check_labels(small_pipeline("regression-fix", build_model=build, label_encoding="one_hot"))
    assert result.passed, str(result)


@pytest.mark.parametrize(
    "loss, regression",
    [
        ("mse", True),
        ("MeanSquaredError", True),
        (lambda: compat.keras().losses.MeanAbsoluteError(), True),
        (lambda: compat.keras().losses.Huber(), True),
        (lambda: compat.keras().losses.mean_squared_logarithmic_error, True),
        ("binary_crossentropy", False),
        ("categorical_hinge", False),
    ],
    ids=["mse", "class-name", "mae-object", "huber", "msle-function", "bce", "hinge"],
)
def test_loss_facts_tell_regression_losses(loss, regression):
    assert loss_facts(loss() if callable(loss) and not isinstance(loss, str) else loss).regression is regression


# -- validation's labels against the trained model's predictions ----------------------------

REVERSED_SUMMARY = "validation_data's labels look permuted: 0->2, 2->0"
REVERSED_DETAIL = (
    "the trained model predicts 12 of 12 training images as their own label, but predicts validation label 0 as 2 "
    "on 3 of 3 images, training label 0 as 0 on 4 of 4 images; validation label 2 as 0 on 3 of 3 images, training "
    "label 2 as 2 on 4 of 4 images: validation was labelled from another class list or order"
)


def test_an_integer_dataset_validation_labelled_from_a_reversed_class_list_is_named(pipeline_of):
    # Both splits' class names are '0', '1', '2': only the trained model tells the labels apart.
    pipeline = pipeline_of(integer_dataset_validation_reversed)
    assert pipeline.raw_validation_data().class_names == pipeline.raw_data().class_names == ("0", "1", "2")
    result = check_labels(pipeline)
    assert result.summary == REVERSED_SUMMARY, str(result)
    assert REVERSED_DETAIL in result.details
    assert "Both splits have only class indices, no names" in result.details
    assert "pass class_names=train_ds.class_names" in result.details
    assert result.numbers["label_predictions"]["validation"] == {0: (2, 3, 3), 1: (1, 3, 3), 2: (0, 3, 3)}


def test_the_same_integer_dataset_labelled_alike_passes_and_says_what_was_compared(pipeline_of):
    result = check_labels(pipeline_of(integer_dataset_validation_alike))
    assert result.passed, str(result)
    assert result.summary.endswith(
        "; validation has no class names, and the trained model predicts its labels as training's"
    ), result.summary
    assert "the trained model predicts validation labels 0, 1, 2 mostly as themselves (9 of 9 images)" in str(result)


TRAIN = [0] * 4 + [1] * 4 + [2] * 4
VALIDATION_LABELS = [0] * 3 + [1] * 3 + [2] * 3


@pytest.mark.parametrize(
    "train_predicted, validation_predicted, moved, note",
    [
        # A model that generalizes badly answers one class for most validation images: no one-to-one mapping.
        (TRAIN, [1] * 9, {}, "do not map one to one onto other training labels"),
        # Validation's labels 0 and 1 both predicted as 2: chance or a bad model, not two lists.
        (TRAIN, [2, 2, 2, 2, 2, 2, 2, 2, 2], {}, "do not map one to one"),
        # One label moved (a class the model confuses), the others agree: not most of the labels.
        (TRAIN, [0, 0, 0, 1, 1, 1, 1, 1, 1], {}, "do not map one to one"),
        # The model does not fit its training images: validation is not judged.
        ([0] * 12, [2, 2, 2, 1, 1, 1, 0, 0, 0], {}, "predicts only 4 of 12 training images as their own label"),
        # Predictions split evenly within each label: no label has one prediction for most of its images.
        (TRAIN, [0, 1, 2, 0, 1, 2, 0, 1, 2], {}, "fewer than 2 validation labels have 2 images or more"),
    ],
    ids=["one-class", "two-onto-one", "one-moved", "training-not-fitted", "no-majority"],
)
def test_validation_labels_are_blamed_only_for_a_consistent_mapping(train_predicted, validation_predicted, moved, note):
    compared = comparison(TRAIN, train_predicted, VALIDATION_LABELS, validation_predicted)
    assert compared.moved == moved
    said = label_findings.validation_labels_unjudged(compared) or label_findings.validation_labels_mixed(compared)
    assert note in said, said


def test_validation_labels_shifted_onto_others_are_named_as_a_shift():
    # A 4-class model; validation labels 0, 1, 2 mean training's 1, 2, 3 (its first class left out).
    train = [label for label in range(4) for _ in range(3)]
    compared = comparison(train, train, [0, 0, 1, 1, 2, 2], [1, 1, 2, 2, 3, 3])
    assert compared.moved == {0: 1, 1: 2, 2: 3} and not compared.permutation
    finding = label_findings.validation_labels_moved(compared, unnamed=True)
    assert finding.summary == "validation_data's labels look shifted onto other labels: 0->1, 1->2, 2->3"


class _Outputs:
    def __init__(self, outputs):
        self.outputs = np.asarray(outputs, np.float32)

    def predict(self, x, batch_size, verbose):
        return self.outputs


@pytest.mark.parametrize(
    "outputs, threshold, classes",
    [
        ([[0.2], [0.7]], 0.5, [0, 1]),  # one sigmoid unit
        ([[-1.0], [0.3]], 0.0, [0, 1]),  # one logit
        ([[0.1, 0.9], [0.8, 0.2]], 0.5, [1, 0]),  # softmax rows: their argmax
    ],
    ids=["sigmoid", "logit", "softmax"],
)
def test_predicted_classes_read_one_unit_by_its_threshold(outputs, threshold, classes):
    assert predicted_classes(_Outputs(outputs), np.zeros((2, 1)), 2, threshold).tolist() == classes
