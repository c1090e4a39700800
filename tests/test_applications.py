"""keras.applications by name, at their smallest input, with the matching preprocessing."""

import numpy as np
import pytest

from pipeline_checks import build_application, known_applications
from pipeline_checks.model import compat
from pipeline_checks.model.applications import APPLICATIONS

REQUIRED = {"ResNet50", "InceptionV3", "MobileNetV2", "EfficientNetB0", "DenseNet121", "VGG16"}


def test_the_required_applications_are_known():
    assert REQUIRED <= set(known_applications())


@pytest.mark.parametrize("name", known_applications())
def test_builds_at_its_minimum_size_and_predicts(keras_application, name):
    application = keras_application(name, classes=4)
    side = APPLICATIONS[name].min_size
    assert application.model.input_shape == (None, side, side, 3)
    assert application.model.output_shape == (None, 4)
    images = np.random.default_rng(0).integers(0, 256, (2, side, side, 3)).astype("float32")
    probabilities = compat.to_numpy(application.model(application.preprocess_input(images), training=False))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["ResNet50", "DenseNet121", "MobileNetV2", "EfficientNetB0"])
def test_grayscale_models_and_their_preprocessing(keras_application, name):
    model, preprocess_input = keras_application(name, classes=2, channels=1)
    assert model.input_shape[-1] == 1
    grey = np.full((1, 32, 32, 1), 128, dtype="float32")
    inputs = np.asarray(preprocess_input(grey))
    assert inputs.shape == (1, 32, 32, 1)
    assert compat.to_numpy(model(inputs, training=False)).shape == (1, 2)


@pytest.mark.parametrize(
    "name, low, high",
    [("InceptionV3", -1.0, 1.0), ("ResNet50", -123.68, 255 - 103.939), ("EfficientNetB0", 0.0, 255.0)],
    ids=["tf-mode", "caffe-mode", "rescales-inside"],
)
def test_preprocess_input_is_the_applications_own(name, low, high):
    application = build_application(name, classes=2)
    pixels = np.array([[[[0, 0, 0], [255, 255, 255]]]], dtype="float32")
    out = np.asarray(application.preprocess_input(pixels))
    assert out.min() == pytest.approx(low, abs=1e-3) and out.max() == pytest.approx(high, abs=1e-3)


def test_caffe_preprocessing_of_grey_images_uses_the_mean_of_the_channel_means():
    _, preprocess_input = build_application("VGG16", classes=2, channels=1)
    out = np.asarray(preprocess_input(np.full((1, 1, 1, 1), 200.0, dtype="float32")))
    assert out.item() == pytest.approx(200.0 - np.mean([103.939, 116.779, 123.68]), abs=1e-3)


def test_input_size_follows_the_setting_and_the_argument(keras_application):
    assert keras_application("MobileNetV2", input_shape=48).input_shape == (48, 48, 3)
    assert keras_application("MobileNetV2", input_shape=(40, 56)).model.input_shape == (None, 40, 56, 3)


@pytest.mark.pipeline_checks(image_size=40)
def test_pc_image_size_sets_the_default_input(keras_application):
    assert keras_application("MobileNetV2").input_shape == (40, 40, 3)


def test_a_local_weights_file_is_loaded(tmp_path):
    first = build_application("MobileNetV2", classes=2, alpha=0.35)
    path = tmp_path / "mobilenet.weights.h5"
    first.model.save_weights(path)
    second = build_application("MobileNetV2", classes=2, alpha=0.35, weights=path)
    for saved, loaded in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(saved, loaded)


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (
            ("ResNet51",),
            {},
            ValueError,
            "Unknown application 'ResNet51'; expected one of: DenseNet121, EfficientNetB0, *",
        ),
        (
            ("InceptionV3",),
            {"input_shape": 74},
            ValueError,
            "InceptionV3 needs inputs of at least 75x75 pixels; received: input_shape=(74, 74, 3)",
        ),
        (
            ("ResNet50",),
            {"input_shape": (31, 64)},
            ValueError,
            "ResNet50 needs inputs of at least 32x32 pixels; received: input_shape=(31, 64, 3)",
        ),
        (
            ("ResNet50",),
            {"weights": "imagenet"},
            ValueError,
            "weights='imagenet' would download weights at run time, *pass its path: build_application(name, "
            "weights='path/to/weights.h5').",
        ),
        (("ResNet50",), {"weights": "missing.h5"}, FileNotFoundError, "No weights file at weights='missing.h5'"),
        (("ResNet50",), {"channels": 2}, ValueError, "channels must be 1 or 3; received: channels=2"),
        (
            ("ResNet50",),
            {"input_shape": (32, 32, 4)},
            ValueError,
            "channels must be 1 or 3; received: input_shape=(32, 32, 4)",
        ),
        (
            ("ResNet50",),
            {"input_shape": "32"},
            ValueError,
            "input_shape must be an int side, (height, width) or (height, width, channels); received: input_shape='32'",
        ),
        (("ResNet50",), {"classes": 1}, ValueError, "classes must be an integer of at least 2; received: classes=1"),
    ],
    ids=[
        "unknown-name",
        "below-minimum",
        "below-minimum-height",
        "imagenet",
        "missing-weights",
        "two-channels",
        "four-channel-shape",
        "string-shape",
        "one-class",
    ],
)
def test_invalid_arguments(args, kwargs, error, message):
    from fnmatch import fnmatchcase

    with pytest.raises(error) as raised:
        build_application(*args, **kwargs)
    assert fnmatchcase(str(raised.value), message), str(raised.value)


def test_names_match_case_insensitively():
    assert build_application("mobilenetv2", classes=2).name == "MobileNetV2"


def test_an_application_looked_at_is_built_without_initializing_its_variables():
    """`compat.variables_left_uninitialized`: the preprocessing check builds a reference application
    to read its first layers; on Keras 3 its random weights are never computed, and nothing is left
    for Keras to initialize later."""
    from pipeline_checks.model.preprocessing_layers import _leading_classes

    keras = compat.keras()
    with compat.variables_left_uninitialized():
        looked_at = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    used = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert np.isfinite(compat.to_numpy(used.weights[0])).all()  # built afterwards: initialized as usual
    assert _leading_classes("ResNet50") == ("ZeroPadding2D",)
    if not compat.is_keras3():
        return  # Keras 2 initializes them as usual
    from keras.src.backend.common import global_state

    assert all(variable._value is None for variable in looked_at.weights)
    assert not global_state.get_global_attribute("uninitialized_variables", None)
