"""Segmentation targets: a class label per pixel, read as masks (N, height, width) from arrays and from
a dataset, sparse or one-hot, with their class names; what is not a mask of the images refused in one line."""

import numpy as np
import pytest

from pipeline_checks import Pipeline, make_tiny_images
from pipeline_checks.pipelines.sources import integer_labels

DATA = make_tiny_images(classes=2, per_class=2, size=8, seed=0)
MASKS = (DATA.images.mean(axis=-1) > 100).astype(np.uint8)  # (4, 8, 8): 0 dark, 1 bright


def per_pixel_model():
    from pipeline_checks.model import compat

    keras = compat.keras()
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1, activation="softmax")])
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(
    "masks",
    [
        pytest.param(MASKS, id="n-h-w"),
        pytest.param(MASKS[..., None], id="n-h-w-1"),
        pytest.param(MASKS.astype(np.int64), id="int64"),
    ],
)
def test_integer_masks_of_the_images_are_a_segmentation(masks):
    pipeline = Pipeline("p", per_pixel_model, (DATA.images, masks, ("dark", "bright")))
    raw = pipeline.raw_data()
    assert raw.task == "segmentation"
    assert raw.labels.shape == (4, 8, 8) and raw.labels.dtype == np.int32
    assert raw.class_names == ("dark", "bright")
    np.testing.assert_array_equal(pipeline.targets(raw), MASKS)


def test_masks_without_class_names_are_named_by_index():
    raw = Pipeline("p", per_pixel_model, (DATA.images, MASKS)).raw_data()
    assert (raw.task, raw.class_names) == ("segmentation", ("0", "1"))


def test_one_hot_masks_become_their_argmax():
    labels, names, encoding = integer_labels(np.eye(2, dtype=np.float32)[MASKS])
    np.testing.assert_array_equal(labels, MASKS)
    assert (names, encoding) == (("0", "1"), "one_hot")


def test_a_dataset_of_masks_is_a_segmentation():
    tf = pytest.importorskip("tensorflow")
    dataset = tf.data.Dataset.from_tensor_slices((DATA.images.astype(np.float32) / 255, MASKS[..., None])).batch(2)
    raw = Pipeline("p", per_pixel_model, dataset, fit_kwargs={"epochs": 1}).raw_data()
    assert raw.task == "segmentation" and raw.labels.shape == (4, 8, 8)


@pytest.mark.parametrize(
    "masks, message",
    [
        pytest.param(
            MASKS[:, :4],
            "Pipeline 'p': data labels must be 4 integers, one per image, or masks (4, 8, 8) of class indices, one "
            "per pixel; received: dtype uint8, shape (4, 4, 8)",
            id="masks-of-another-size",
        ),
        pytest.param(
            MASKS[:3],
            "Pipeline 'p': data labels must be 4 integers, one per image, or masks (4, 8, 8) of class indices, one "
            "per pixel; received: dtype uint8, shape (3, 8, 8)",
            id="masks-of-fewer-images",
        ),
    ],
)
def test_labels_that_are_not_masks_of_the_images_are_refused_in_one_line(masks, message):
    with pytest.raises(ValueError) as raised:
        Pipeline("p", per_pixel_model, (DATA.images, masks, ("dark", "bright"))).raw_data()
    assert str(raised.value) == message


def test_per_pixel_labels_that_are_not_class_indices_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"per-pixel labels must be class indices \(N, height, width\)"):
        integer_labels(np.zeros((2, 4, 4, 1, 1), dtype=np.int32))
