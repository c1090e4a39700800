"""The loader forms keras.io examples write: a (training, validation) split, images of varying size,
and a train function that takes the validation data."""

import numpy as np
import pytest
from broken_pipelines.common import DATA, compiled_cnn
from broken_pipelines.dataset_code import folder, scaled

from pipeline_checks.checks import check_labels
from pipeline_checks.errors import PipelineRunError
from pipeline_checks.model import compat
from pipeline_checks.pipelines.pipeline import Pipeline
from pipeline_checks.run.training import train

tf = pytest.importorskip("tensorflow")
FIT = {"epochs": 2, "batch_size": 4}


def both_subsets(path, validation_split=0.25):
    """image_classification_from_scratch's loader: one call, both subsets."""
    return compat.keras().utils.image_dataset_from_directory(
        str(path), validation_split=validation_split, subset="both", seed=1337, image_size=(16, 16), batch_size=4
    )


def test_a_split_trains_on_its_first_dataset_and_validates_on_its_second():
    path = folder()
    pipeline = Pipeline("both", compiled_cnn, lambda: both_subsets(path), train_dataset=scaled, fit_kwargs=FIT)
    train_part, validation_part = pipeline.raw_data(), pipeline.raw_validation_data()
    assert (len(train_part), len(validation_part)) == (9, 3)  # 12 files, 0.25 held out
    assert train_part.class_names == validation_part.class_names == DATA.class_names  # the datasets' own names
    run = train(pipeline)
    assert len(run.batch_losses) == 2 * 3  # 9 images in batches of 4: fit trains on the first dataset
    assert "val_loss" in run.history.history  # and validates on the second, as the example's fit does


def test_labels_compares_a_splits_class_lists():
    path = folder()
    result = check_labels(
        Pipeline("both", compiled_cnn, lambda: both_subsets(path), train_dataset=scaled, fit_kwargs=FIT)
    )
    assert result.passed, result.details
    assert "validation lists the same classes in the same order" in result.summary


def varying_sizes():
    """A tfds-style loader: unbatched images of their own sizes, before the repository's resize."""
    sizes = [(16 + 3 * (i % 4), 16 + 2 * (i % 3)) for i in range(len(DATA))]
    images = [tf.image.resize(tf.constant(image, tf.float32), size) for image, size in zip(DATA.images, sizes)]
    return tf.data.Dataset.from_generator(
        lambda: ((image, label) for image, label in zip(images, DATA.labels)),
        output_signature=(tf.TensorSpec((None, None, 3), tf.float32), tf.TensorSpec((), tf.int64)),
    ).apply(tf.data.experimental.assert_cardinality(len(DATA)))


def resized_to_16(dataset):
    """The repository's own resize, as the transfer-learning guide maps keras.layers.Resizing."""
    resize = compat.keras().layers.Resizing(16, 16)
    return dataset.map(lambda x, y: (resize(x) / 255.0, y))


def test_images_of_varying_size_are_read_at_the_models_input_size():
    pipeline = Pipeline("sizes", compiled_cnn, varying_sizes, train_dataset=resized_to_16, fit_kwargs=FIT)
    raw = pipeline.raw_data()
    assert raw.images.shape == (len(DATA), 16, 16, 3)  # compiled_cnn's input is 16 x 16
    run = train(pipeline)
    assert len(run.batch_losses) == 2 * 3
    np.testing.assert_allclose(pipeline.train_inputs(raw.images), raw.images / 255.0, rtol=1e-5, atol=1e-5)


def test_images_of_varying_size_without_a_resize_name_the_sizes():
    with pytest.raises(PipelineRunError, match=r"images of different sizes \(such as 16x16 and 19x18\)"):
        train(Pipeline("sizes", compiled_cnn, varying_sizes, fit_kwargs=FIT))


def test_a_train_function_with_a_third_parameter_gets_the_validation_data():
    path = folder()
    received = []

    def fit_with_validation(model, data, validation_data):  # the transfer-learning guide's fit call
        received.append(validation_data)
        x, y = data if isinstance(data, tuple) else (data, None)  # arrays come as (x_train, y_train)
        model.fit(x, y, epochs=1, validation_data=validation_data)

    pipeline = Pipeline(
        "both",
        compiled_cnn,
        lambda: both_subsets(path),
        train_dataset=scaled,
        fit_kwargs=FIT,
        train=fit_with_validation,
    )
    run = train(pipeline)
    assert isinstance(received[0], tf.data.Dataset) and "val_loss" in run.history.history

    arrays = Pipeline(
        "arrays", compiled_cnn, DATA, fit_kwargs={**FIT, "validation_split": 0.25}, train=fit_with_validation
    )
    train(arrays)
    x_val, y_val = received[-1]
    assert len(x_val) == len(y_val) == 3  # the images validation_split holds out

    own = []
    train(Pipeline("own", compiled_cnn, DATA, fit_kwargs=FIT, train=lambda model, data, epochs=3: own.append(epochs)))
    assert own == [3]  # a third parameter with a default is the function's own

    def by_keyword(model, data, *, validation_data=None):
        received.append(validation_data)

    train(Pipeline("keyword", compiled_cnn, DATA, fit_kwargs={**FIT, "validation_split": 0.5}, train=by_keyword))
    assert len(received[-1][0]) == 6
