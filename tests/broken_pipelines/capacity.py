"""Pipelines whose trainable part is small (frozen bases), and those that cannot learn at all.

A head on a frozen base cannot always memorize a dozen images: with weights=None (CI
downloads nothing) its features are random, so it learns slowly (on the conv base the head
reaches 0.33-0.75 in 10 epochs on TensorFlow, 0-0.5 on torch, seeds 0-4), or not at all (a
frozen MobileNetV2 shrinks every image to ~1e-11, so the binary head stays at 0.5). Those are
correct. A head that cannot learn (learning rate 0, dead units) is broken, and overfit names
the mechanism.
"""

import functools

from broken_pipelines import families
from broken_pipelines.common import DATA, broken, correct
from pipeline_checks import Pipeline, make_tiny_images
from pipeline_checks.model.applications import preprocess_input_for
from pipeline_checks.pipelines.pipeline import to_float

PHOTOS_BINARY_32 = make_tiny_images(classes=2, per_class=6, size=32, seed=0, kind="photos")
FIT = {"epochs": 10, "batch_size": 4}


def scaled(images):
    return images.astype("float32") / 255.0


def mobilenet_v2_inputs(images):
    return preprocess_input_for("MobileNetV2")(to_float(images))


def _conv_head(name, build=families.frozen_conv_base, **kwargs):
    return Pipeline(
        name=name, build_model=functools.partial(build, **kwargs), data=DATA, preprocess_train=scaled, fit_kwargs=FIT
    )


def _dead_head(units=16, learning_rate=1e-3):
    """The frozen conv base under a hidden ReLU layer whose units start dead (bias -10 under
    features of ~0.1): no image activates them, so every image gets the same output."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    frozen = families.frozen_conv_base()
    base = frozen.get_layer("conv_base")
    inputs = keras.Input(shape=(16, 16, 3))
    dead = keras.initializers.Constant(-10.0)
    hidden = keras.layers.Dense(units, activation="relu", bias_initializer=dead, name="hidden")(
        base(inputs, training=False)
    )
    outputs = keras.layers.Dense(3, activation="softmax", name="logits")(hidden)
    model = keras.Model(inputs, outputs, name="dead_head")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


# -- correct twins ---------------------------------------------------------------------------


def frozen_conv_base_head():
    return _conv_head("frozen-conv-base-head")


def frozen_mobilenet_v2_binary_head():
    return Pipeline(
        name="frozen-mobilenetv2-binary-head",
        build_model=functools.partial(families.frozen_application_base, "MobileNetV2", classes=2, alpha=0.35),
        data=PHOTOS_BINARY_32,
        preprocess_train=mobilenet_v2_inputs,
        application="MobileNetV2",
        fit_kwargs=FIT,
    )


# -- broken: heads that cannot learn -----------------------------------------------------------


def frozen_conv_base_learning_rate_0():
    return _conv_head("frozen-conv-base-learning-rate-0", learning_rate=0.0)


def frozen_conv_base_dead_head():
    return _conv_head("frozen-conv-base-dead-head", build=_dead_head)


CASES = [
    correct(frozen_conv_base_head, "none: a head on a frozen random conv base learns slowly (0.67 in 10 epochs)"),
    correct(
        frozen_mobilenet_v2_binary_head,
        "none: a binary head on a frozen weights=None MobileNetV2, whose features are ~1e-11 for every image",
    ),
    broken(
        frozen_conv_base_learning_rate_0,
        "head on a frozen base with learning rate 0",
        overfit=r"the trainable part does not learn: none of the 2 trainable weights moved(.|\n)*learning rate 0",
        variables_change=r"(?s)2 of 2 trainable weights never changed.*learning rate is 0",
    ),
    broken(
        frozen_conv_base_dead_head,
        "hidden ReLU layer of the head dead from the start (bias -10)",
        overfit=r"the trainable part does not learn: the model gives all 12 images the same output(.|\n)*dead units",
        variables_change=r"3 of 4 trainable weights never changed in \d+ steps of fit \(hidden/kernel, hidden/bias, "
        r"logits/kernel\)",
    ),
]


# -- issue 36: short of 1 in its own epochs, not unable to learn --------------------------------


def _slow_cnn(build, name):
    from broken_pipelines.common import small_pipeline

    return small_pipeline(name, build_model=build, fit_kwargs={"epochs": 40, "batch_size": 4})


def slow_learning_rate_cnn():
    """A small sample trained with a low learning rate for a fixed count of epochs, as in DataCamp's
    "Overfitting detection" exercise (campus.datacamp.com/courses/introduction-to-tensorflow-in-python,
    high-level-apis ex. 8: Adam at a low learning rate, 50 epochs): Adam 1e-4 for 40 epochs reaches
    0.67 of the 12 images, its loss falling; overfit continues the fit from its end (1.0 in 92 more)."""
    from broken_pipelines.common import compiled_cnn

    return _slow_cnn(functools.partial(compiled_cnn, learning_rate=1e-4), "slow-learning-rate-cnn")


def slow_learning_rate_residual():
    """The same program on the residual net (learning rate 1e-4, 40 epochs)."""
    return _slow_cnn(functools.partial(families.residual_net, learning_rate=1e-4), "slow-learning-rate-residual")


CASES += [
    correct(slow_learning_rate_cnn, "none: Adam 1e-4, 40 epochs: short of 1 in its epochs, not unable to learn"),
    correct(slow_learning_rate_residual, "none: the residual net at Adam 1e-4 for 40 epochs"),
]
