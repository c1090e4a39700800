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

The example's batches are 64 images of 160 x 160; here the dozen images are one batch (135 epochs, one
step each), so its BatchNormalization normalizes over every image, as the example's does over many.
In batches of 4 the scaled-down U-Net learns its batches rather than its images: seeded with
`keras.utils.set_random_seed`, Keras 3 on TensorFlow shuffles arrays into the same permutation every
epoch (measured on 3.15: batches (6, 11, 7, 8), (2, 3, 9, 1), (10, 0, 4, 5) in each epoch; unseeded,
and on Keras 2 and torch, they change), and BatchNormalization over 4 images of 2 x 2 features lets
the model lean on its batch partners: fit logged per-pixel accuracy 0.73, while the final weights in
training mode reached 0.52 in other batches of 4 and 0.52 in inference. In one batch, fit's 0.84 is
what the final weights reach in training mode (0.84) and inference (0.83).
"""

from __future__ import annotations

import numpy as np

from broken_pipelines.common import DATA, broken, correct, recalibrate_after_fit
from broken_pipelines.reproducibility import custom_layers
from broken_pipelines.training import _custom
from pipeline_checks.pipelines.pipeline import Pipeline, to_float

CLASSES = ("dark", "middle", "bright")


def brightness_masks(images) -> np.ndarray:
    """Each pixel's class by its brightness: the thirds of the pixels' range, (N, H, W, 1) uint8."""
    brightness = np.asarray(images, np.float32).mean(axis=-1)
    edges = np.quantile(brightness, [1 / 3, 2 / 3])
    return np.digitize(brightness, edges).astype(np.uint8)[..., None]


MASKS = brightness_masks(DATA.images)


def unet(classes=3, input_shape=(16, 16, 3), down=(8, 16), up=(16, 8), front=None, stop_gradient=False):
    """The example's `get_model(img_size, num_classes)` with fewer and narrower blocks; `front`, a layer
    in front of it; `stop_gradient`, a stop_gradient after its entry block."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    layers = keras.layers
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs if front is None else front(inputs))
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    if stop_gradient:
        x = _custom().StopGradient()(x)
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


def compiled_unet(learning_rate=None, **kwargs):
    """The U-Net compiled as the example compiles it: RMSprop (Keras' default learning rate 1e-3 unless given)."""
    from pipeline_checks.model import compat

    model = unet(**kwargs)
    optimizer = "rmsprop" if learning_rate is None else compat.keras().optimizers.RMSprop(learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def segmentation(name="segmentation-unet", masks=MASKS, **changes) -> Pipeline:
    pipeline = dict(
        name=name,
        build_model=compiled_unet,
        data=(DATA.images, masks, CLASSES),
        preprocess_train=lambda images: images.astype("float32") / 255.0,
        fit_kwargs={"epochs": 135, "batch_size": 12},
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


def learning_rate_too_small():
    """RMSprop at 1e-6 in place of the example's default 1e-3: the steps are far too small to learn."""
    return segmentation("segmentation-learning-rate-too-small", build_model=lambda: compiled_unet(1e-6))


def huge_learning_rate():
    """RMSprop at 1e4 in place of the example's default 1e-3: the loss overflows to NaN within a few steps."""
    return segmentation("segmentation-huge-learning-rate", build_model=lambda: compiled_unet(1e4))


def served_raw_pixels():
    """Pixels / 255 at fit, raw 0..255 pixels at serving: the scaling left out of inference."""
    return segmentation("segmentation-served-raw-pixels", preprocess_infer=to_float)


def stop_gradient():
    """A stop_gradient after the U-Net's entry block: its Conv2D and BatchNormalization get no gradient and
    keep their initial values (as keras-team/keras#13502, a Lambda calling stop_gradient past a layer)."""
    return segmentation("segmentation-stop-gradient", build_model=lambda: compiled_unet(stop_gradient=True))


def clock_seeded_noise_layer():
    """A noise layer in front of the U-Net whose SeedGenerator is seeded from the clock: two runs from one
    seed train on different noise."""
    return segmentation(
        "segmentation-clock-seeded-noise-layer",
        build_model=lambda: compiled_unet(front=custom_layers().ClockSeededNoise(0.05)),
    )


def unregistered_custom_layer():
    """A rescaling layer of the repository's own in front of the U-Net, never registered with keras.saving:
    the saved model does not load (fversaci/WaveTF#3, "ValueError: Unknown layer: HaarWaveLayer2D")."""
    return segmentation(
        "segmentation-unregistered-custom-layer",
        build_model=lambda: compiled_unet(front=custom_layers().UnregisteredRescale(1 / 255)),
        preprocess_train=to_float,
    )


BELOW_TARGET = r"accuracy of the predictions at best, below the target 0\.6"
# Measured with Keras 3.15 and torch 2.13 on CPU: plain `fit` raises too, on any Conv2D after UpSampling2D.
TORCH_REFUSES = (
    "Keras on torch cannot train the U-Net: the backward pass through UpSampling2D before a Conv2D raises "
    "'grad_input must be contiguous' in a plain fit too, so every check that trains raises there; labels and "
    "preprocessing, which do not train, judge as elsewhere"
)
UNTRAINED = ("labels", "preprocessing")


def _on_torch(case):
    if "torch" in case.on_backends:  # the row says what torch does itself
        return case
    causes = {name: cause for name, cause in case.expected.items() if name in UNTRAINED}
    return case.on("torch", TORCH_REFUSES, raises=r"grad_input must be contiguous", **causes)


ONE_BASED = r"mask labels run 1\.\.3 for 3 classes"

ROWS = [
    correct(
        segmentation,
        "none: keras.io's U-Net-like Oxford pets segmentation, scaled down, one batch of 12, BN recalibrated",
    ),
    broken(stale_batchnorm, "BatchNorm statistics stale after fit", agreement=r"predicted_accuracy"),
    broken(
        one_based_masks,
        "the trimap's 1, 2, 3 fed as they are: class 3 past a 3-unit softmax",
        labels=ONE_BASED,
        # No pixel of class 3 (the majority, 0.334) can be right, so at most 0.6663 of the pixels are: short of
        # the target 0.6668 (chance + half the rest) however long the continued fit.
        overfit=BELOW_TARGET,
    )
    .on(
        ("tensorflow", "keras2"),
        "TensorFlow's sparse cross-entropy refuses a label past the softmax in the first training-mode pass",
        raises=r"outside the valid range",
        labels=ONE_BASED,
    )
    .on(
        "torch",
        "torch's cross-entropy refuses it too, in the first training-mode pass: 'Target 3 is out of bounds'",
        raises=r"Target 3 is out of bounds",
        labels=ONE_BASED,
    ),
    broken(learning_rate_too_small, "RMSprop learning rate 1e-6", overfit=BELOW_TARGET),
    broken(
        huge_learning_rate,
        "RMSprop learning rate 1e4: the loss overflows",
        numerics=r"went non-finite first(.|\n)*learning rate 10000",
        agreement=r"Not finite",
        overfit=BELOW_TARGET,
    ),
    broken(
        served_raw_pixels,
        "fit on pixels / 255, served raw 0..255 pixels",
        preprocessing=r"training feeds pixels / 255(.|\n)*inference feeds raw pixels 0\.\.255|different inputs",
        agreement="",
    ),
    broken(stop_gradient, "stop_gradient after the entry block", variables_change=r"never changed"),
    broken(clock_seeded_noise_layer, "noise layer seeded from the clock", determinism=r"ClockSeededNoise"),
    broken(
        unregistered_custom_layer,
        "a custom layer not registered as serializable",
        save_load=r"(?s)the custom class 'UnregisteredRescale' is not registered.*register_keras_serializable",
    ),
]
CASES = [_on_torch(case) for case in ROWS]
