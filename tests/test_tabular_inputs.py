"""Classification data that are not uint8 images: tabular rows, sequences, float images, as arrays
and as tf.data, accepted as declared; what cannot be inputs refused in one line; and what each
check says where a part of it needs images."""

import re

import numpy as np
import pytest

from pipeline_checks import Pipeline
from pipeline_checks.checks import check_labels, check_preprocessing
from pipeline_checks.errors import PipelineRunError

RNG = np.random.default_rng(0)
LABELS = np.arange(6) % 2
NAMES = ("no", "yes")


def mlp(features=4):
    from pipeline_checks.model import compat

    keras = compat.keras()
    model = keras.Sequential([keras.Input(shape=(features,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def arrays(inputs, labels=LABELS):
    return Pipeline("p", mlp, (inputs, labels, NAMES))


@pytest.mark.parametrize(
    "inputs",
    [
        pytest.param(RNG.normal(size=(6, 4)).astype("float32"), id="tabular-float32"),
        pytest.param(RNG.normal(size=(6, 4)), id="tabular-float64"),
        pytest.param(RNG.integers(0, 9, (6, 4)), id="tabular-int64"),
        pytest.param(np.arange(6, dtype="float32"), id="one-feature-1d"),
        pytest.param(RNG.normal(size=(6, 5, 3)).astype("float32"), id="sequence"),
        pytest.param(RNG.uniform(size=(6, 4, 4, 3)).astype("float32"), id="float-images"),
        pytest.param(np.array([[np.nan, 1.0], [np.inf, 0.0]] * 3, dtype="float32"), id="non-finite"),
    ],
)
def test_numeric_inputs_of_any_shape_are_read_as_declared(inputs):
    raw = arrays(inputs).raw_data()
    np.testing.assert_array_equal(raw.images, inputs)
    np.testing.assert_array_equal(raw.labels, LABELS)
    assert raw.class_names == NAMES


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(
            (np.array([{}, [], "a"], dtype=object), LABELS[:3], NAMES),
            "Pipeline 'p': data inputs must be a numeric array with one row per example; received: dtype object, "
            "shape (3,)",
            id="object-array",
        ),
        pytest.param(
            (np.float32(1.0), LABELS, NAMES),
            "Pipeline 'p': data inputs must be a numeric array with one row per example; received: dtype float32, "
            "shape ()",
            id="0-d",
        ),
        pytest.param(
            (np.array(["a", "b"] * 3), LABELS, NAMES),
            "Pipeline 'p': data inputs must be a numeric array with one row per example; received: dtype <U1, "
            "shape (6,)",
            id="strings",
        ),
        pytest.param(
            (np.zeros((6, 4), "float32"), LABELS[:5], NAMES),
            "Pipeline 'p': data labels must be 6 integers, one per example; received: dtype int64, shape (5,)",
            id="labels-of-another-length",
        ),
        pytest.param(
            (np.zeros((6, 4), "float32"), LABELS.astype("float32"), NAMES),
            "Pipeline 'p': data labels must be 6 integers, one per example; received: dtype float32, shape (6,)",
            id="float-labels",
        ),
        pytest.param(
            (np.zeros((6, 2, 2, 3), "uint8"), LABELS[:5], NAMES),
            "Pipeline 'p': data labels must be 6 integers, one per image; received: dtype int64, shape (5,)",
            id="image-labels-still-per-image",
        ),
        pytest.param(
            (np.zeros((0, 4), "float32"), LABELS[:0], NAMES),
            "Pipeline 'p': data holds no examples",
            id="empty",
        ),
        pytest.param(
            (np.empty((6, 2, 2, 3), dtype=object), LABELS, NAMES),
            "Pipeline 'p': data images must be a numeric array of shape (N, height, width, channels); received: "
            "dtype object, shape (6, 2, 2, 3)",
            id="object-images",
        ),
    ],
)
def test_what_cannot_be_inputs_is_refused_naming_the_value(data, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Pipeline("p", mlp, data).raw_data()


def test_the_reason_names_the_shape():
    from pipeline_checks.pipelines.input_kind import not_images, shape_text

    assert shape_text(np.zeros((6, 8))) == "(N, 8)"
    assert shape_text(np.zeros(6)) == "(N,)"
    assert not_images(np.zeros((6, 5, 3))) == "inputs are not images (shape (N, 5, 3))"


def dataset(inputs, labels, batch=None):
    tf = pytest.importorskip("tensorflow")
    data = tf.data.Dataset.from_tensor_slices((inputs, labels))
    return data.batch(batch) if batch else data


@pytest.mark.parametrize("batch", [None, 4], ids=["unbatched", "batched"])
@pytest.mark.parametrize("shape", [(6, 4), (6, 5, 3)], ids=["tabular", "sequence"])
def test_a_tf_data_dataset_of_rows_gives_its_rows_and_labels(batch, shape):
    inputs = RNG.normal(size=shape).astype("float32")
    pipeline = Pipeline("p", mlp, dataset(inputs, LABELS, batch), fit_kwargs={"epochs": 1, "batch_size": 4})
    raw = pipeline.raw_data()
    np.testing.assert_array_equal(raw.images, inputs)
    np.testing.assert_array_equal(raw.labels, LABELS)


def test_a_dataset_of_strings_is_refused_in_one_line():
    data = dataset(np.array(["a", "b"] * 3), LABELS)
    message = (
        "Pipeline 'p': data raised ValueError: data inputs must be a numeric array with one row per example; "
        "received: dtype object, shape (6,)"
    )
    with pytest.raises(PipelineRunError, match=f"^{re.escape(message)}$"):
        Pipeline("p", mlp, data).raw_data()


def test_preprocessing_says_the_application_and_pixel_conventions_are_not_judged():
    rows = RNG.normal(size=(6, 4)).astype("float32")
    result = check_preprocessing(Pipeline("p", mlp, (rows, LABELS, NAMES), application="MobileNetV2"))
    assert result.passed, result
    assert "training and inference give identical inputs for 6 examples" in result.summary
    text = str(result)
    assert "inputs are not images (shape (N, 4)): MobileNetV2's preprocess_input is not judged" in text
    assert "inputs are not images (shape (N, 4)): the paths are compared value by value; no pixel convention" in text


def test_preprocessing_names_no_pixel_convention_for_rows_served_otherwise():
    rows = RNG.normal(size=(6, 4)).astype("float32")
    pipeline = Pipeline("p", mlp, (rows, LABELS, NAMES), preprocess_infer=lambda r: np.asarray(r, "float32") * 255)
    result = check_preprocessing(pipeline)
    assert not result.passed
    assert "give different inputs for the same 6 examples" in result.summary
    assert "looks like" not in str(result) and "pixels" not in str(result)


def test_labels_advise_standardizing_unscaled_features():
    rows = np.column_stack([RNG.uniform(0, 170_000, 6), RNG.normal(size=(6, 3))]).astype("float32")
    result = check_labels(Pipeline("p", mlp, (rows, LABELS, NAMES)))
    assert not result.passed
    assert "large features reach its last layer" in str(result)
    assert "standardize the features (with the training set's mean and std)" in str(result)
    assert "/ 255" not in str(result)


def test_agreement_judges_confusion_counts_as_shares_of_the_samples():
    from pipeline_checks.oracle.findings import _gaps

    def gaps(evaluate, fit, counts={"fp": False}):  # noqa: B006 (read only)
        values = {"evaluate": {"fp": evaluate}, "fit": {"fp": fit}}
        return [f.summary for f in _gaps(values, "evaluate", "fit", ("fp",), 0.05, 1024, False, counts) if f.failure]

    assert gaps(255.0, 254.0) == []  # one sample of 1024
    assert gaps(1.0, 0.0) == []  # a count of 0 and 1 is one sample, not a fraction's whole range
    assert gaps(0.0, 1.0, counts={}) != []  # an accuracy-like metric from 1 to 0: every sample
    assert gaps(6.0, 300.0) == []  # fewer false positives than fit counted: better, not a gap below fit
    assert gaps(52.0, 0.0) == ["Gap: evaluate vs fit: fp 52.0000 is 52.0000 above fit's 0.0000 (52 of 1024 samples)."]


def test_the_confusion_counts_are_found_among_the_compiled_metrics():
    from pipeline_checks.model import compat
    from pipeline_checks.model.passes import sample_count_metrics

    keras = compat.keras()
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid")])
    metrics = [keras.metrics.FalseNegatives(name="fn"), keras.metrics.TruePositives(), keras.metrics.Precision()]
    model.compile("adam", "binary_crossentropy", metrics=["accuracy", *metrics])
    model.fit(np.zeros((6, 4), "float32"), LABELS, verbose=0)
    assert sample_count_metrics(model) == {"fn": False, "true_positives": True}
