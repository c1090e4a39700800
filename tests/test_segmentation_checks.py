"""The checks on segmentation pipelines (a class per pixel): labels counted over pixels, a per-pixel
accuracy for agreement, and overfit's automatic per-pixel target."""

import functools

import numpy as np
import pytest
from broken_pipelines import segmentation

from pipeline_checks.checks import check_agreement, check_labels, check_overfit
from pipeline_checks.model import compat
from pipeline_checks.model.probes import pixel_accuracy
from pipeline_checks.run.training import forget_shared_runs


@pytest.fixture(autouse=True)
def _fresh_runs():
    yield
    forget_shared_runs()


def test_labels_pass_on_the_unet_with_pixel_shares():
    result = check_labels(segmentation.segmentation())
    assert result.passed, str(result)
    assert "masks (16, 16) of 3 classes 0..2, pixel shares 0.33, 0.33, 0.33" in str(result)
    assert result.numbers["task"] == "segmentation"
    assert result.numbers["output_width"] == 3


def test_labels_name_one_based_masks():
    result = check_labels(segmentation.one_based_masks())
    assert not result.passed
    assert "mask labels run 1..3 for 3 classes" in str(result)
    assert "subtract 1 from the masks" in str(result)


def test_labels_name_a_head_wider_than_the_classes():
    build = functools.partial(segmentation.compiled_unet, classes=4)
    result = check_labels(segmentation.segmentation("segmentation-wide-head", build_model=build))
    assert not result.passed
    assert "the head gives 4 scores per pixel for 3 classes" in str(result)


def test_labels_name_a_class_no_pixel_has():
    masks = np.minimum(segmentation.MASKS, 1)  # "bright" merged into "middle"
    result = check_labels(segmentation.segmentation("segmentation-merged", masks=masks))
    assert not result.passed
    assert "1 of 3 classes have no pixel in the masks: no pixel is labelled bright" in str(result)


def test_masks_of_another_size_than_the_images_are_refused_in_one_line():
    masks = segmentation.MASKS[:, ::2, ::2]  # (8, 8) masks for (16, 16) images
    with pytest.raises(ValueError, match=r"or masks \(12, 16, 16\) of class indices, one per pixel; received: "):
        check_labels(segmentation.segmentation("segmentation-small-masks", masks=masks))


def test_labels_name_an_output_of_another_size_than_the_masks():
    def build():
        keras = compat.keras()
        inputs = keras.Input((16, 16, 3))
        outputs = keras.layers.Conv2D(3, 3, strides=2, padding="same", activation="softmax")(inputs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
        return model

    result = check_labels(segmentation.segmentation("segmentation-strided-output", build_model=build))
    assert not result.passed
    assert "masks are (16, 16) but the model outputs (8, 8) pixels" in str(result)


@pytest.mark.parametrize(
    "masks",
    [np.array([[[0, 1], [2, 2]]]), np.array([[[0, 1], [2, 2]]])[..., None], np.eye(3)[np.array([[[0, 1], [2, 2]]])]],
    ids=["integer", "integer-channel", "one-hot"],
)
def test_pixel_accuracy_is_the_share_of_pixels_whose_argmax_is_their_label(masks):
    scores = np.eye(3)[np.array([[[0, 1], [1, 2]]])]  # three of four pixels right
    assert pixel_accuracy(scores, [masks]) == pytest.approx(0.75)


def test_pixel_accuracy_refuses_class_rows():
    assert pixel_accuracy(np.eye(3), [np.arange(3)]) is None


def test_agreement_gates_per_pixel_accuracy_on_stale_batchnorm():
    result = check_agreement(segmentation.stale_batchnorm())
    assert not result.passed
    assert "predicted_accuracy" in str(result).splitlines()[0]


def test_overfit_targets_half_the_way_from_chance_to_every_pixel():
    pipeline = segmentation.segmentation()
    result = check_overfit(pipeline)
    assert result.passed, str(result)
    chance = result.numbers["chance"]
    assert result.numbers["target"] == pytest.approx(chance + 0.5 * (1 - chance))
    assert "half of the way from chance" not in result.summary  # the reason is told where it is short
    strict = check_overfit(pipeline, target_accuracy=0.99)  # the same shared run, judged against a given target
    assert not strict.passed and "below the target 0.99" in strict.summary, str(strict)
