"""Preprocessing inside the model: Rescaling, Normalization or preprocessing layers in front of an application.

An application's convention holds where its own layers receive their inputs, so the
preprocessing check judges it there, after the model's own preprocessing layers: raw pixels
fed to a model that scales them itself must pass, the wrong scaling inside the model and a
second preprocessing on inputs already preprocessed outside must fail.
"""

import functools

from broken_pipelines import families
from broken_pipelines.common import DATA, broken, correct, recalibrate_after_fit
from pipeline_checks import Pipeline, make_tiny_images
from pipeline_checks.model.applications import preprocess_input_for
from pipeline_checks.pipelines.pipeline import to_float

PHOTOS_32 = make_tiny_images(classes=3, per_class=4, size=32, seed=0, kind="photos")
FIT = {"epochs": 15, "batch_size": 4}


def mobilenet_v2_preprocess_input(images):
    return preprocess_input_for("MobileNetV2")(to_float(images))


# The frozen base's BatchNorm statistics, taken from the photographs in MobileNetV2's own
# convention: a stand-in for its pretrained weights, which saw [-1, 1] inputs.
CALIBRATION = mobilenet_v2_preprocess_input(PHOTOS_32.images)


def _frozen_mobilenet_v2(name, scale, offset):
    """The keras.io transfer-learning guide on raw pixels: the model's own Rescaling, then a frozen MobileNetV2."""
    return Pipeline(
        name=name,
        build_model=functools.partial(
            families.rescaled_frozen_application_base, "MobileNetV2", scale, offset, calibration=CALIBRATION, alpha=0.35
        ),
        data=PHOTOS_32,
        preprocess_train=to_float,
        application="MobileNetV2",
        fit_kwargs=FIT,
    )


def rescaled_frozen_mobilenet_v2():
    return _frozen_mobilenet_v2("rescaling-tf-frozen-mobilenetv2", 1 / 127.5, -1.0)


def unit_rescaled_frozen_mobilenet_v2():
    return _frozen_mobilenet_v2("rescaling-1-255-frozen-mobilenetv2", 1 / 255, 0.0)


def _rescaled_residual_net(name, preprocess):
    """A residual net whose inputs must follow MobileNetV2's convention (as for its pretrained
    weights), scaled by the model's own Rescaling(1/127.5, -1). 60 epochs: preprocessed twice,
    its inputs are squeezed into [-1.008, -0.992] and it fits them only in 16 to 30 epochs
    (seeds 0-4), so that the preprocessing check alone tells the twins apart."""
    return Pipeline(
        name=name,
        build_model=families.rescaled_residual_net,
        data=DATA,
        preprocess_train=preprocess,
        application="MobileNetV2",
        fit_kwargs={"epochs": 60, "batch_size": 4},
        after_fit=recalibrate_after_fit,
    )


def rescaled_residual_net():
    return _rescaled_residual_net("rescaling-tf-residual-net", to_float)


def preprocessed_twice_residual_net():
    return _rescaled_residual_net("preprocessed-twice-residual-net", mobilenet_v2_preprocess_input)


CASES = [
    correct(
        rescaled_frozen_mobilenet_v2,
        "none: raw pixels, the model's own Rescaling(1/127.5, -1) in front of a frozen MobileNetV2",
    ),
    correct(
        rescaled_residual_net,
        "none: raw pixels, the model's own Rescaling(1/127.5, -1) in front of a whole residual net",
    ),
    broken(
        unit_rescaled_frozen_mobilenet_v2,
        "the model's own Rescaling(1/255) gives MobileNetV2 [0, 1], not [-1, 1]",
        preprocessing=(
            r"where its layers receive them, after the model's own Rescaling\(scale=0\.00392, offset=0\): "
            r"range \[0, 0\.9\d*\], where MobileNetV2 expects \[-1, 0\.9\d*\](.|\n)*pixels / 255"
        ),
    ),
    broken(
        preprocessed_twice_residual_net,
        "preprocess_input outside the model and Rescaling(1/127.5, -1) inside: preprocessed twice",
        preprocessing=r"after the model's own Rescaling\(scale=0\.00784, offset=-1\)(.|\n)*the inputs are "
        r"preprocessed twice",
    ),
]
