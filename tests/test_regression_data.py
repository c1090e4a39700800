"""Regression targets: float values read as values to regress, from `(inputs, targets)` arrays as
`fit(x, y)` takes them and from a tf.data.Dataset; class labels (integers, one-hot rows, names) read as
before; what is neither refused in one line naming the value."""

import numpy as np
import pytest

from pipeline_checks import Pipeline
from pipeline_checks.pipelines.sources import are_values, integer_labels

RNG = np.random.default_rng(0)
ROWS = RNG.normal(size=(6, 4)).astype("float32")
VALUES = np.array([0.5, 2.25, -1.0, 3.5, 0.0, 1.75], dtype="float32")


def linear_model(outputs=1):
    from pipeline_checks.model import compat

    keras = compat.keras()
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(outputs)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param(VALUES, id="float32-values"),
        pytest.param(VALUES.astype("float64"), id="float64-values"),
        pytest.param(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype="float32"), id="whole-float-values"),
        pytest.param(np.stack([VALUES, -VALUES], axis=1), id="two-outputs"),
    ],
)
def test_inputs_and_float_targets_are_a_regression(targets):
    pipeline = Pipeline("p", linear_model, (ROWS, targets))
    raw = pipeline.raw_data()
    assert raw.task == "regression"
    assert raw.class_names == () and raw.labels.dtype == np.float32
    np.testing.assert_array_equal(pipeline.targets(raw), targets.astype("float32"))
    assert pipeline.encoding_of(pipeline.targets(raw)) == "values"


def test_inputs_and_integer_targets_are_class_labels_named_by_index():
    raw = Pipeline("p", linear_model, (ROWS, np.array([0, 1, 2, 0, 1, 2]))).raw_data()
    assert raw.task == "classification"
    assert raw.class_names == ("0", "1", "2")


def test_a_validation_split_of_values_holds_out_the_last_rows():
    pipeline = Pipeline("p", linear_model, (ROWS, VALUES), fit_kwargs={"epochs": 1, "validation_split": 0.5})
    np.testing.assert_array_equal(pipeline.raw_data().labels, VALUES[:3])
    np.testing.assert_array_equal(pipeline.raw_validation_data().labels, VALUES[3:])


@pytest.mark.parametrize(
    "targets, values",
    [
        pytest.param(np.array([0.5, 1.0]), True, id="a-fraction"),
        pytest.param(np.array([np.nan, 1.0]), True, id="not-finite"),
        pytest.param(np.array([[0.0, 2.0], [1.0, 0.0]]), True, id="rows-not-one-hot"),
        pytest.param(np.array([[0.0, 1.0], [1.0, 0.0]]), False, id="one-hot-rows"),
        pytest.param(np.array([0.0, 1.0, 2.0]), False, id="whole-floats"),
        pytest.param(np.array([0, 1, 2]), False, id="integers"),
    ],
)
def test_float_targets_are_values_unless_they_are_class_indices_or_one_hot_rows(targets, values):
    assert are_values(targets) is values


def test_a_dataset_of_float_targets_is_a_regression():
    tf = pytest.importorskip("tensorflow")
    pipeline = Pipeline(
        "p", linear_model, tf.data.Dataset.from_tensor_slices((ROWS, VALUES)).batch(3), fit_kwargs={"epochs": 1}
    )
    raw = pipeline.raw_data()
    assert raw.task == "regression" and raw.class_names == ()
    np.testing.assert_array_equal(raw.labels, VALUES)
    assert pipeline.encoding_of(pipeline.training_pairs(raw)[1]) == "values"


def test_a_dataset_of_one_hot_rows_stays_a_classification():
    labels, names, encoding = integer_labels(np.eye(3, dtype="float32")[[0, 2, 1]])
    assert (list(labels), names, encoding) == ([0, 2, 1], ("0", "1", "2"), "one_hot")


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(
            (ROWS, VALUES[:4]),
            "Pipeline 'p': data labels must be 6 targets, one per example: integer class labels (N,), or float values "
            "(N,) or (N, outputs) to regress; received: dtype float32, shape (4,)",
            id="too-few-targets",
        ),
        pytest.param(
            (ROWS, VALUES, ("a", "b")),
            "Pipeline 'p': data labels must be 6 integers, one per example; received: dtype float32, shape (6,)",
            id="float-values-with-class-names",
        ),
        pytest.param(
            (ROWS, np.array(["a", "b", "c", "a", "b", "c"])),
            "Pipeline 'p': data labels must be 6 targets, one per example: integer class labels (N,), or float values "
            "(N,) or (N, outputs) to regress; received: dtype <U1, shape (6,)",
            id="strings-without-class-names",
        ),
    ],
)
def test_targets_that_are_neither_labels_nor_values_are_refused_in_one_line(data, message):
    with pytest.raises(ValueError) as raised:
        Pipeline("p", linear_model, data).raw_data()
    assert str(raised.value) == message
