"""Segmentation pipelines: a class label per pixel (masks), a per-pixel softmax, sparse categorical
cross-entropy, declared as arrays `(images, masks, class_names)`.

The correct row is keras.io's "Image segmentation with a U-Net-like architecture" (keras-team/keras-io,
examples/vision/oxford_pets_image_segmentation.py, by fchollet), its `get_model` scaled down: an
entry Conv2D with stride 2, BatchNormalization and ReLU; downsampling blocks of two SeparableConv2D
with BatchNormalization, max pooling and a projected residual; upsampling blocks of two
Conv2DTranspose with BatchNormalization, UpSampling2D and a projected residual; a per-pixel softmax
Conv2D. Compiled as the example compiles (`optimizer="rmsprop"`, `loss="sparse_categorical_crossentropy"`,
no metric), with masks (N, H, W, 1) of classes 0, 1, 2 as its `OxfordPets` sequence gives them (the
trimap's 1, 2, 3 minus one). Its data here: the pattern images, each pixel labelled by its brightness
(dark, middle, bright), and the BatchNorm statistics recalibrated after fit, as the image rows'.
"""

from __future__ import annotations

import numpy as np

from broken_pipelines.common import DATA, broken, recalibrate_after_fit
from pipeline_checks.pipelines.pipeline import Pipeline

CLASSES = ("dark", "middle", "bright")


def brightness_masks(images) -> np.ndarray:
    """Each pixel's class by its brightness: the thirds of the pixels' range, (N, H, W, 1) uint8."""
    brightness = np.asarray(images, np.float32).mean(axis=-1)
    edges = np.quantile(brightness, [1 / 3, 2 / 3])
    return np.digitize(brightness, edges).astype(np.uint8)[..., None]


MASKS = brightness_masks(DATA.images)


def unet(classes=3, input_shape=(16, 16, 3), down=(8, 16), up=(16, 8)):
    """The example's `get_model(img_size, num_classes)` with fewer and narrower blocks."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    layers = keras.layers
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    for filters in down:
        for _ in range(2):
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.add([x, layers.Conv2D(filters, 1, strides=2, padding="same")(previous)])
        previous = x
    for filters in (*up, 8):
        for _ in range(2):
            x = layers.Activation("relu")(x)
            x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        x = layers.add([x, layers.Conv2D(filters, 1, padding="same")(layers.UpSampling2D(2)(previous))])
        previous = x
    outputs = layers.Conv2D(classes, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs)


def compiled_unet(**kwargs):
    model = unet(**kwargs)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    return model


def segmentation(name="segmentation-unet", masks=MASKS, **changes) -> Pipeline:
    pipeline = dict(
        name=name,
        build_model=compiled_unet,
        data=(DATA.images, masks, CLASSES),
        preprocess_train=lambda images: images.astype("float32") / 255.0,
        fit_kwargs={"epochs": 45, "batch_size": 4},
        after_fit=recalibrate_after_fit,
    )
    if "preprocess_train" in changes:
        changes.setdefault("preprocess_infer", None)
    return Pipeline(**{**pipeline, **changes})


def one_based_masks():
    """The Oxford pets trimap's 1, 2, 3 fed as they are (keras.io's example subtracts 1; questions on the
    dataset's masks: divamgupta/image-segmentation-keras#254, "fill the image with integers ... '0' for
    background"): sparse cross-entropy reads class 3 past the 3-unit softmax."""
    return segmentation("segmentation-one-based-masks", masks=MASKS + 1)


def stale_batchnorm():
    """The U-Net with no BatchNorm recalibration after fit: its moving statistics lag the trained weights,
    and predict's masks differ from training's (keras-team/keras#12400, "I have a UNet with batchnorm ...
    the segmentation output ... differs")."""
    return segmentation("segmentation-stale-batchnorm", after_fit=None)


UNJUDGED = r"no automatic per-pixel target for a segmentation"  # overfit refuses without target_accuracy

CASES = [
    broken(
        segmentation,
        "none (keras.io's U-Net-like Oxford pets segmentation, scaled down, BN recalibrated); overfit "
        "refuses: no automatic per-pixel target",
        overfit=UNJUDGED,
    ),
    broken(
        stale_batchnorm,
        "BatchNorm statistics stale after fit",
        agreement=r"predicted_accuracy",
        overfit=UNJUDGED,
    ),
]
