"""check_preprocessing: training and inference give the same inputs, in the application's conventions."""

import re

import numpy as np
import pytest
from broken_pipelines.common import DATA, compiled_cnn, small_pipeline
from broken_pipelines.data import (
    augmented_by_half_turns,
    inference_skips_rescaling,
    mobilenet_v2_inputs_in_tf_range,
    mobilenet_v2_inputs_in_unit_range,
    scale_to_tf,
    scale_to_unit,
)
from broken_pipelines.in_model_preprocessing import (
    PHOTOS_32,
    mobilenet_v2_preprocess_input,
    rescaled_frozen_mobilenet_v2,
)
from broken_pipelines.program_faults import WITH_A_BLANK_IMAGE, standardize_each_image

from pipeline_checks import Pipeline
from pipeline_checks.checks import check_preprocessing
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.model import compat
from pipeline_checks.model.applications import preprocess_input_for
from pipeline_checks.model.preprocessing_layers import application_start, describe_layer, inputs_received
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
        "cropped-for-training",
        preprocess_train=lambda images: scale_to_unit(images[:, 2:-2, 2:-2]),
        preprocess_infer=scale_to_unit,
    )


def test_train_infer_mismatch_reports_difference_counts_and_both_ranges(pipeline_of):
    result = check_preprocessing(pipeline_of(inference_skips_rescaling))
    assert result.summary == (
        "preprocess_train and preprocess_infer give different inputs for the same 12 images: "
        "max abs difference 254 (12 of 12 images, 8,991 of 9,216 values, 97.6%)"
    )
    assert "preprocess_train: range [0, 1]" in result.details and "preprocess_infer: range [0, 255]" in result.details
    assert "Fix: build both paths from one function" in result.details
    numbers = result.numbers
    assert (
        numbers["max_abs_difference"] == 254
        and numbers["images_differing"] == 12
        and numbers["values_differing"] == 8991
    )
    assert numbers["train_range"] == (0.0, 1.0) and numbers["infer_range"] == (0.0, 255.0)
    assert numbers["train_random"] is False


def test_application_mismatch_names_the_convention_and_the_fix(pipeline_of):
    result = check_preprocessing(pipeline_of(mobilenet_v2_inputs_in_unit_range))
    assert (
        "Likely cause: the inputs are pixels / 255, in [0, 1] (rescale=1/255), "
        "where MobileNetV2 expects pixels scaled to [-1, 1]" in result.details
    )
    assert "keras.applications.mobilenet_v2.preprocess_input" in result.details
    assert (
        result.numbers["application_range"] == (-1.0, 1.0) and result.numbers["application_max_abs_difference"] == 1.0
    )
    assert result.numbers["max_abs_difference"] == 0.0  # training and inference agree with each other


@pytest.mark.parametrize(
    "factory, cause",
    [
        (
            application("InceptionV3", scale_to_unit, "inceptionv3-rescale-1-255"),
            r"expects \[-1, 1\] \('tf' mode\)(.|\n)*the inputs are pixels / 255",
        ),
        (
            application("ResNet50", scale_to_unit, "resnet50-rescale-1-255"),
            r"where ResNet50 expects \[-123\.7, 151\.1\] \('caffe' mode\)(.|\n)*"
            r"BGR channel order with the ImageNet channel means subtracted",
        ),
        (
            application("ResNet50", mean_subtracted_in_rgb, "resnet50-rgb"),
            r"within the same range \[-123\.7, 151\.1\](.|\n)*Likely cause: the inputs are in reversed channel order",
        ),
        (
            application("EfficientNetB0", scale_to_unit, "efficientnetb0-rescale-1-255"),
            r"expects raw pixels 0\.\.255 \(the model rescales inside\)",
        ),
        (channels_swapped_at_inference, r"Likely cause: the channel order is reversed between the paths"),
        (
            cropped_for_training,
            r"inputs of different shapes for the same 12 images: shapes \(12, 12, 3\) and \(16, 16, 3\)",
        ),
    ],
    ids=[
        "inceptionv3-unit-range",
        "resnet50-unit-range",
        "resnet50-rgb-order",
        "efficientnetb0-unit-range",
        "bgr-at-inference",
        "crop-only-in-training",
    ],
)
def test_catches_more_conventions_without_training(factory, cause):
    result = check_preprocessing(factory())
    assert not result.passed
    assert re.search(cause, str(result)), str(result)


@pytest.mark.parametrize(
    "factory, summary",
    [
        (small_pipeline, r"^training and inference give identical inputs for 12 images, range \[0, 1\]$"),
        (
            mobilenet_v2_inputs_in_tf_range,
            r"they follow MobileNetV2's preprocess_input \('tf' mode, range \[-1, 1\]\)$",
        ),
        (application("ResNet50", caffe, "resnet50-caffe"), r"they follow ResNet50's preprocess_input \('caffe' mode"),
        (
            application("EfficientNetB0", to_float, "efficientnetb0-raw"),
            r"they follow EfficientNetB0's preprocess_input \('none' mode",
        ),
        (augmented_by_half_turns, r"differ only as augmentation does \(4 of 12 images differ"),
        (random_half_turns, r"differ only as random augmentation does"),
        (random_brightness, r"differ only as random augmentation does \(12 of 12 images differ"),
    ],
    ids=[
        "small-cnn",
        "mobilenetv2-tf",
        "resnet50-caffe",
        "efficientnetb0-raw",
        "seeded-half-turns",
        "random-half-turns",
        "random-brightness",
    ],
)
def test_passes_correct_pipeline(pipeline_of, factory, summary):
    result = check_preprocessing(pipeline_of(factory))
    assert result.passed, str(result)
    assert re.search(summary, result.summary), result.summary


def test_random_training_path_is_compared_on_both_draws(pipeline_of):
    result = check_preprocessing(pipeline_of(random_half_turns))
    assert result.numbers["train_random"] is True
    assert result.numbers["statistics_gap"] < 1e-6


def test_nan_inputs_in_both_paths_are_no_augmentation_and_are_counted():
    """A division by a blank image's zero std gives NaN in both paths: NaN != NaN made the check call
    the inference path random ("augmentation runs at serving"); numerics owns non-finite inputs."""
    result = check_preprocessing(
        small_pipeline("zscore-no-epsilon", data=WITH_A_BLANK_IMAGE, preprocess_train=standardize_each_image)
    )
    assert result.passed, result
    assert result.numbers["train_random"] is False and result.numbers["infer_random"] is False
    assert result.numbers["non_finite_inputs"] == 16 * 16 * 3
    assert "random" not in str(result) and "augmentation runs" not in str(result)
    assert result.summary.endswith(
        "; both hold 768 values NaN or Inf, in 1 of 12 images, not compared as a difference "
        "(check_numerics reports where they come from)"
    )


def test_nan_in_one_path_only_is_a_difference_named_as_such():
    pipeline = small_pipeline(
        "zscore-no-epsilon-in-training",
        data=WITH_A_BLANK_IMAGE,
        preprocess_train=standardize_each_image,
        preprocess_infer=lambda images: standardize_each_image(images, epsilon=1e-7),
    )
    result = check_preprocessing(pipeline)
    assert not result.passed
    assert result.numbers["max_abs_difference"] == float("inf")
    assert result.summary == (
        "preprocess_train and preprocess_infer give different inputs for the same 12 images: max abs difference "
        "inf (1 of 12 images, 768 of 9,216 values, 8.3%)"
    )
    assert (
        "Likely cause: one path gives NaN or Inf where the other does not (preprocess_train gives 768 such values, "
        "preprocess_infer 0): e.g. a division by a zero standard deviation or a log of 0 in one path only"
    ) in str(result)


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
        (
            small_pipeline(),
            {"tolerance": -0.1},
            ValueError,
            "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance=-0.1",
        ),
        (
            small_pipeline(),
            {"tolerance": 1},
            ValueError,
            "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance=1",
        ),
        (
            small_pipeline(),
            {"tolerance": float("nan")},
            ValueError,
            "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance=nan",
        ),
        (
            small_pipeline(),
            {"tolerance": "0.1"},
            ValueError,
            "tolerance must be a fraction of the inputs' value range, in [0, 1); received: tolerance='0.1'",
        ),
        (small_pipeline(), {"samples": 0}, ValueError, "samples must be a positive integer; received: samples=0"),
        (small_pipeline(), {"samples": 2.5}, ValueError, "samples must be a positive integer; received: samples=2.5"),
        (small_pipeline(), {"samples": True}, ValueError, "samples must be a positive integer; received: samples=True"),
    ],
    ids=[
        "tolerance-negative",
        "tolerance-one",
        "tolerance-nan",
        "tolerance-string",
        "samples-zero",
        "samples-float",
        "samples-bool",
    ],
)
def test_invalid_arguments(given, kwargs, error, message):
    with pytest.raises(error) as raised:
        check_preprocessing(given, **kwargs)
    assert str(raised.value) == message


# -- preprocessing inside the model: judged where the application's layers receive it ------

MOBILENET = {"alpha": 0.35, "weights": None}
IMAGENET_MEAN, IMAGENET_VARIANCE = [0.485, 0.456, 0.406], [0.229**2, 0.224**2, 0.225**2]


def compiled(inputs, outputs):
    keras = compat.keras()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def mobilenet_v2_behind(*front, size=32, head=True):
    """A model whose MobileNetV2 base (nested) receives the inputs after `front`'s layers; each
    item is a layer, or a function of the symbolic tensor (ops recorded in the model)."""

    def build():
        keras = compat.keras()
        inputs = keras.Input((size, size, 3))
        x = inputs
        for step in front:
            x = step(x)
        base = keras.applications.MobileNetV2(include_top=False, input_shape=tuple(x.shape[1:]), **MOBILENET)
        x = keras.layers.GlobalAveragePooling2D()(base(x, training=False))
        return compiled(inputs, keras.layers.Dense(3, activation="softmax")(x) if head else x)

    return build


def flattened_mobilenet_v2_on_rescaling():
    """MobileNetV2 built on `input_tensor=Rescaling(...)(inputs)`: one flattened functional model."""
    keras = compat.keras()
    inputs = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    application = keras.applications.MobileNetV2(input_tensor=scaled, classes=3, **MOBILENET)
    return compiled(inputs, application.output)


def efficientnet_b0(*front):
    def build():
        keras = compat.keras()
        inputs = keras.Input((32, 32, 3))
        x = inputs
        for layer in front:
            x = layer(x)
        return compiled(inputs, keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=3)(x))

    return build


def cnn_behind(*front):
    """The small CNN (no application inside) behind `front`'s layers."""

    def build():
        keras = compat.keras()
        inputs = keras.Input((16, 16, 3))
        x = inputs
        for layer in front:
            x = layer(x)
        return compiled(inputs, compiled_cnn()(x))

    return build


def in_model(name, build, application="MobileNetV2", preprocess=to_float, data=PHOTOS_32):
    return Pipeline(name=name, build_model=build, data=data, preprocess_train=preprocess, application=application)


def layers():
    return compat.keras().layers


def make_photos(size):
    from pipeline_checks import make_tiny_images

    return make_tiny_images(classes=3, per_class=4, size=size, seed=0, kind="photos")


def test_judges_mobilenet_v2_after_the_models_own_rescaling():
    """False alarm 3: Rescaling(1/127.5, offset=-1) in front of a frozen MobileNetV2, fed raw pixels."""
    result = check_preprocessing(rescaled_frozen_mobilenet_v2())
    assert result.passed, str(result)
    assert result.summary.endswith(
        "; judged after the model's own Rescaling(scale=0.00784, offset=-1), where MobileNetV2's layers receive them: "
        "range [-1, 0.9373] follows MobileNetV2's preprocess_input ('tf' mode, range [-1, 0.9373])"
    )
    assert "as layer 'mobilenetv2_0.35_32/Conv1' receives them: range [-1, 0.9373]" in result.details
    assert result.numbers["application_judged_after"] == "Rescaling(scale=0.00784, offset=-1)"
    assert result.numbers["infer_range"] == (0.0, 247.0)
    assert result.numbers["application_inputs_range"] == pytest.approx((-1.0, 247 / 127.5 - 1), abs=1e-6)


@pytest.mark.parametrize(
    "build, judged_after",
    [
        (flattened_mobilenet_v2_on_rescaling, r"Rescaling\(scale=0\.00784, offset=-1\)"),
        (
            mobilenet_v2_behind(
                lambda x: layers().RandomFlip("horizontal")(x), lambda x: layers().Rescaling(1 / 127.5, offset=-1)(x)
            ),
            r"RandomFlip, Rescaling\(scale=0\.00784, offset=-1\)",
        ),
        (
            mobilenet_v2_behind(lambda x: layers().Lambda(preprocess_input_for("MobileNetV2"))(x)),
            r"Lambda\(mobilenet_v2\.preprocess_input\)",
        ),
        # Keras 3 records the ops as operations of the model, Keras 2 as TFOpLambda layers
        (
            mobilenet_v2_behind(lambda x: x / 127.5 - 1.0),
            r"(operations in front of its first layer '[^']+/Conv1'"
            r"|TFOpLambda\(math\.truediv\), TFOpLambda\(math\.subtract\))",
        ),
        (
            mobilenet_v2_behind(
                lambda x: layers().Resizing(32, 32)(x), lambda x: layers().Rescaling(1 / 127.5, offset=-1)(x), size=40
            ),
            r"Resizing\(32, 32\), Rescaling\(scale=0\.00784, offset=-1\)",
        ),
    ],
    ids=[
        "flattened-on-input-tensor",
        "augmentation-then-rescaling",
        "lambda-preprocess-input",
        "ops-on-the-input",
        "resizing-then-rescaling",
    ],
)
def test_passes_wherever_the_model_preprocesses_for_mobilenet_v2(build, judged_after):
    data = make_photos(40) if "Resizing" in judged_after else PHOTOS_32
    result = check_preprocessing(in_model("in-model", build, data=data))
    assert result.passed, str(result)
    assert re.search(
        r"; judged after the model's own " + judged_after + r", where MobileNetV2's layers receive them: range \[-1, ",
        result.summary,
    ), result.summary


def test_catches_preprocess_input_outside_and_inside():
    build = mobilenet_v2_behind(lambda x: layers().Lambda(preprocess_input_for("MobileNetV2"))(x))
    result = check_preprocessing(in_model("twice", build, preprocess=mobilenet_v2_preprocess_input))
    assert not result.passed
    assert result.summary.startswith(
        "inputs do not follow MobileNetV2's preprocess_input where its layers receive them, after the model's own "
        "Lambda(mobilenet_v2.preprocess_input): range [-1.008, -0.9"
    ), result.summary
    assert (
        "Likely cause: the inputs are preprocessed twice: the pipeline already gives MobileNetV2's convention"
        in result.details
    )
    assert "Fix: preprocess once: remove the model's own Lambda(mobilenet_v2.preprocess_input)" in result.details


def test_layers_that_pass_inputs_through_at_inference_behave_as_without_them():
    """RandomFlip alone in front: the base receives the pipeline's inputs, judged as today."""
    build = mobilenet_v2_behind(lambda x: layers().RandomFlip("horizontal")(x))
    result = check_preprocessing(in_model("flip-only", build, preprocess=mobilenet_v2_preprocess_input))
    assert result.passed, str(result)
    assert result.summary.endswith("; they follow MobileNetV2's preprocess_input ('tf' mode, range [-1, 0.9373])")
    assert result.numbers["application_judged_after"] is None


def test_an_application_that_rescales_inside_starts_at_its_own_rescaling():
    """EfficientNetB0's own Rescaling and Normalization are its, not the model's: raw pixels pass,
    and a Rescaling(1/255) of the model's own in front of it fails."""
    correct = check_preprocessing(in_model("efficientnetb0-raw", efficientnet_b0(), application="EfficientNetB0"))
    assert correct.passed, str(correct)
    assert correct.numbers["application_judged_after"] is None
    broken = check_preprocessing(
        in_model("efficientnetb0-rescaled", efficientnet_b0(layers().Rescaling(1 / 255)), application="EfficientNetB0")
    )
    assert not broken.passed
    assert re.search(
        r"after the model's own Rescaling\(scale=0\.00392, offset=0\): range \[0, 0\.9\d+\], "
        r"where EfficientNetB0 expects \[0, 247\]"
        r"(.|\n)*Fix: make the model's own preprocessing give EfficientNetB0 raw pixels 0\.\.255 "
        r"\(the model rescales inside\): "
        r"no layer at all",
        str(broken),
    ), str(broken)


def test_torch_mode_normalization_inside_a_model_that_declares_densenet():
    build = cnn_behind(
        layers().Rescaling(1 / 255), layers().Normalization(mean=IMAGENET_MEAN, variance=IMAGENET_VARIANCE)
    )
    result = check_preprocessing(in_model("cnn-torch-mode", build, application="DenseNet121", data=DATA))
    assert result.passed, str(result)
    assert (
        "judged after the model's own Rescaling(scale=0.00392, offset=0), "
        "Normalization(mean=[0.485, 0.456, 0.406], variance=" in result.summary
    )


def test_a_sequential_model_built_only_when_called():
    def build():
        keras = compat.keras()
        base = keras.applications.MobileNetV2(include_top=False, input_shape=(32, 32, 3), **MOBILENET)
        model = keras.Sequential(
            [layers().Rescaling(1 / 127.5, offset=-1), base, layers().GlobalAveragePooling2D(), layers().Dense(3)]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    result = check_preprocessing(in_model("sequential-unbuilt", build))
    assert result.passed, str(result)
    assert result.numbers["application_judged_after"] == "Rescaling(scale=0.00784, offset=-1)"


def test_a_model_that_cannot_be_built_is_judged_as_the_pipeline_feeds_it():
    def build():
        raise RuntimeError("no weights file")

    result = check_preprocessing(
        small_pipeline(
            "unbuildable", build_model=build, application="MobileNetV2", preprocess_train=mobilenet_v2_preprocess_input
        )
    )
    assert result.passed, str(result)
    assert (
        "Note: the model could not be run up to MobileNetV2 "
        "(PipelineRunError: Pipeline 'unbuildable': build_model raised RuntimeError: no weights file)" in result.details
    )


def test_application_start_and_what_it_receives():
    model = mobilenet_v2_behind(layers().Rescaling(1 / 127.5, offset=-1), head=False)()
    start = application_start(model, "MobileNetV2")
    assert start.first.path.endswith("/Conv1") and [type(f.layer).__name__ for f in start.in_front] == ["Rescaling"]
    pixels = PHOTOS_32.images[:5].astype("float32")
    received = inputs_received(model, start.first.layer, pixels, batch_size=2)
    np.testing.assert_allclose(received, pixels / 127.5 - 1, atol=1e-6)
    assert "call" not in vars(start.first.layer)  # the recording wrapper is gone
    assert application_start(compiled_cnn(), "MobileNetV2").in_front == ()


@pytest.mark.parametrize(
    "layer, described",
    [
        (lambda: layers().Rescaling(1 / 255), "Rescaling(scale=0.00392, offset=0)"),
        (lambda: layers().Rescaling([0.5, 1, 2], offset=-1), "Rescaling(scale=[0.5, 1, 2], offset=-1)"),
        (
            lambda: layers().Normalization(mean=[1, 2, 3], variance=[4, 5, 6]),
            "Normalization(mean=[1, 2, 3], variance=[4, 5, 6])",
        ),
        (lambda: layers().Normalization(), "Normalization(adapted)"),
        (lambda: layers().CenterCrop(24, 20), "CenterCrop(24, 20)"),
        (lambda: layers().Lambda(lambda x: x * 2), "Lambda(<lambda>)"),
        (lambda: layers().RandomFlip(), "RandomFlip"),
    ],
    ids=[
        "rescaling",
        "per-channel-rescaling",
        "normalization",
        "adapted-normalization",
        "center-crop",
        "lambda",
        "other",
    ],
)
def test_describe_layer(layer, described):
    assert describe_layer(layer()) == described
