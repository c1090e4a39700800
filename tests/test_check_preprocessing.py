"""check_preprocessing: training and inference give the same inputs, in the application's conventions."""

import re

import numpy as np
import pytest
from broken_pipelines.common import DATA, small_pipeline
from broken_pipelines.data import (
    CASES,
    augmented_by_half_turns,
    inference_skips_rescaling,
    mobilenet_v2_inputs_in_tf_range,
    mobilenet_v2_inputs_in_unit_range,
    scale_to_tf,
    scale_to_unit,
)

from pipeline_checks.model.applications import preprocess_input_for
from pipeline_checks.checks import check_preprocessing
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.pipelines.pipeline import to_float

IMAGES, LABELS = DATA.images.copy(), DATA.labels.copy()


def caffe(images):
    return np.asarray(preprocess_input_for("ResNet50")(images.astype("float32")))


def mean_subtracted_in_rgb(images):
    return images.astype("float32") - np.array([123.68, 116.779, 103.939], dtype="float32")


def random_half_turns():
    """Augmentation from a generator shared across calls: every call turns other images."""
    generator = np.random.default_rng(1)

    def augment(images):
        x = scale_to_unit(images)
        turned = generator.random(len(x)) < 0.5
        x[turned] = x[turned, ::-1, ::-1]
        return x

    return small_pipeline("random-half-turns", preprocess_train=augment, preprocess_infer=scale_to_unit)


def random_brightness():
    generator = np.random.default_rng(2)

    def augment(images):
        return scale_to_unit(images) + generator.uniform(-0.2, 0.2, (len(images), 1, 1, 1)).astype("float32")

    return small_pipeline("random-brightness", preprocess_train=augment, preprocess_infer=scale_to_unit)


def application(name, preprocess, pipeline_name):
    return lambda: small_pipeline(pipeline_name, application=name, preprocess_train=preprocess, preprocess_infer=None)


def channels_swapped_at_inference():
    return small_pipeline("bgr-at-inference", preprocess_infer=lambda images: scale_to_unit(images[..., ::-1]))


def cropped_for_training():
    return small_pipeline(
        "cropped-for-training", preprocess_train=lambda images: scale_to_unit(images[:, 2:-2, 2:-2]), preprocess_infer=scale_to_unit
    )


@pytest.mark.parametrize("case", [c for c in CASES if "preprocessing" in c.causes], ids=lambda case: case.pipeline().name)
def test_catches_broken_pipeline(pipeline_of, case):
    result = check_preprocessing(pipeline_of(case.pipeline))
    assert not result.passed
    assert re.search(case.causes["preprocessing"], str(result)), str(result)


@pytest.mark.parametrize("case", [c for c in CASES if "preprocessing" not in c.causes], ids=lambda case: case.pipeline().name)
def test_passes_every_other_row_of_the_matrix(pipeline_of, case):
    result = check_preprocessing(pipeline_of(case.pipeline))
    assert result.passed, str(result)


def test_train_infer_mismatch_reports_difference_counts_and_both_ranges(pipeline_of):
    result = check_preprocessing(pipeline_of(inference_skips_rescaling))
    assert result.summary == (
        "preprocess_train and preprocess_infer give different inputs for the same 12 images: "
        "max abs difference 254 (12 of 12 images, 8,991 of 9,216 values, 97.6%)"
    )
    assert "preprocess_train: range [0, 1]" in result.details and "preprocess_infer: range [0, 255]" in result.details
    assert "Fix: build both paths from one function" in result.details
    numbers = result.numbers
    assert numbers["max_abs_difference"] == 254 and numbers["images_differing"] == 12 and numbers["values_differing"] == 8991
    assert numbers["train_range"] == (0.0, 1.0) and numbers["infer_range"] == (0.0, 255.0)
    assert numbers["train_random"] is False


def test_application_mismatch_names_the_convention_and_the_fix(pipeline_of):
    result = check_preprocessing(pipeline_of(mobilenet_v2_inputs_in_unit_range))
    assert "Likely cause: the inputs are pixels / 255, in [0, 1] (rescale=1/255), where MobileNetV2 expects pixels scaled to [-1, 1]" in result.details
    assert "keras.applications.mobilenet_v2.preprocess_input" in result.details
    assert result.numbers["application_range"] == (-1.0, 1.0) and result.numbers["application_max_abs_difference"] == 1.0
    assert result.numbers["max_abs_difference"] == 0.0  # training and inference agree with each other


@pytest.mark.parametrize(
    "factory, cause",
    [
        (application("InceptionV3", scale_to_unit, "inceptionv3-rescale-1-255"), r"expects \[-1, 1\] \('tf' mode\)(.|\n)*the inputs are pixels / 255"),
        (application("ResNet50", scale_to_unit, "resnet50-rescale-1-255"), r"where ResNet50 expects \[-123\.7, 151\.1\] \('caffe' mode\)(.|\n)*BGR channel order with the ImageNet channel means subtracted"),
        (application("ResNet50", mean_subtracted_in_rgb, "resnet50-rgb"), r"within the same range \[-123\.7, 151\.1\](.|\n)*Likely cause: the inputs are in reversed channel order"),
        (application("EfficientNetB0", scale_to_unit, "efficientnetb0-rescale-1-255"), r"expects raw pixels 0\.\.255 \(the model rescales inside\)"),
        (channels_swapped_at_inference, r"Likely cause: the channel order is reversed between the paths"),
        (cropped_for_training, r"inputs of different shapes for the same 12 images: shapes \(12, 12, 3\) and \(16, 16, 3\)"),
    ],
    ids=["inceptionv3-unit-range", "resnet50-unit-range", "resnet50-rgb-order", "efficientnetb0-unit-range", "bgr-at-inference", "crop-only-in-training"],
)
def test_catches_more_conventions_without_training(factory, cause):
    result = check_preprocessing(factory())
    assert not result.passed
    assert re.search(cause, str(result)), str(result)


@pytest.mark.parametrize(
    "factory, summary",
    [
        (small_pipeline, r"^training and inference give identical inputs for 12 images, range \[0, 1\]$"),
        (mobilenet_v2_inputs_in_tf_range, r"they follow MobileNetV2's preprocess_input \('tf' mode, range \[-1, 1\]\)$"),
        (application("ResNet50", caffe, "resnet50-caffe"), r"they follow ResNet50's preprocess_input \('caffe' mode"),
        (application("EfficientNetB0", to_float, "efficientnetb0-raw"), r"they follow EfficientNetB0's preprocess_input \('none' mode"),
        (augmented_by_half_turns, r"differ only as augmentation does \(4 of 12 images differ"),
        (random_half_turns, r"differ only as random augmentation does"),
        (random_brightness, r"differ only as random augmentation does \(12 of 12 images differ"),
    ],
    ids=["small-cnn", "mobilenetv2-tf", "resnet50-caffe", "efficientnetb0-raw", "seeded-half-turns", "random-half-turns", "random-brightness"],
)
def test_passes_correct_pipeline(pipeline_of, factory, summary):
    result = check_preprocessing(pipeline_of(factory))
    assert result.passed, str(result)
    assert re.search(summary, result.summary), result.summary


def test_random_training_path_is_compared_on_both_draws(pipeline_of):
    result = check_preprocessing(pipeline_of(random_half_turns))
    assert result.numbers["train_random"] is True
    assert result.numbers["statistics_gap"] < 1e-6


def test_samples_picks_that_many_images_from_the_seed():
    pipeline = small_pipeline("infer-tf-scaling", preprocess_infer=scale_to_tf)
    first, again = check_preprocessing(pipeline, samples=5), check_preprocessing(pipeline, samples=5)
    assert "for the same 5 images" in first.summary
    assert str(first) == str(again)


def test_raise_if_failed(pipeline_of):
    failing = check_preprocessing(pipeline_of(mobilenet_v2_inputs_in_unit_range))
    with pytest.raises(PipelineCheckFailure) as raised:
        failing.raise_if_failed()
    assert str(raised.value) == str(failing)
    assert str(raised.value).startswith("check preprocessing FAILED on pipeline 'mobilenetv2-rescale-1-255': ")
    passing = check_preprocessing(pipeline_of(small_pipeline))
    assert passing.raise_if_failed() is passing


def test_leaves_the_data_unchanged():
    """ResNet50's preprocess_input writes into its argument: the check hands it a copy."""
    pipeline = application("ResNet50", scale_to_unit, "resnet50-unit-range")()
    check_preprocessing(pipeline)
    assert np.array_equal(DATA.images, IMAGES) and np.array_equal(DATA.labels, LABELS)
    assert pipeline.raw_data().images.flags.writeable == DATA.images.flags.writeable


@pytest.mark.parametrize(
    "given, kwargs, error, message",
    [
        ("small-cnn", {}, TypeError, "checks take a pipeline_checks.Pipeline (name, build_model, data, ...); received: pipeline='small-cnn' of type str"),
        (small_pipeline(), {"seed": -1}, ValueError, "seed must be a non-negative integer; received: seed=-1"),
        (small_pipeline(), {"tolerance": -0.1}, ValueError, "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance=-0.1"),
        (small_pipeline(), {"tolerance": 1}, ValueError, "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance=1"),
        (small_pipeline(), {"tolerance": float("nan")}, ValueError, "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance=nan"),
        (small_pipeline(), {"tolerance": "0.1"}, ValueError, "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance='0.1'"),
        (small_pipeline(), {"samples": 0}, ValueError, "samples must be a positive integer; received: samples=0"),
        (small_pipeline(), {"samples": 2.5}, ValueError, "samples must be a positive integer; received: samples=2.5"),
        (small_pipeline(), {"samples": True}, ValueError, "samples must be a positive integer; received: samples=True"),
    ],
    ids=["pipeline-name", "seed-negative", "tolerance-negative", "tolerance-one", "tolerance-nan", "tolerance-string", "samples-zero", "samples-float", "samples-bool"],
)
def test_invalid_arguments(given, kwargs, error, message):
    with pytest.raises(error) as raised:
        check_preprocessing(given, **kwargs)
    assert str(raised.value) == message
