"""Agreement across model families: dropout, stochastic depth, binary heads, BatchNorm gaps.

Correct pipelines whose fit numbers sit below evaluate (dropout active in fit, an epoch
average while the weights improve) or whose BatchNorm batch statistics differ from the
population ones by a sample near the boundary must pass; stale BatchNorm must fail on
every family, not only the small CNN.
"""

import functools

from broken_pipelines import families
from broken_pipelines.common import DATA, broken, correct, recalibrate_after_fit
from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm

BINARY = make_tiny_images(classes=2, per_class=6, size=16, seed=0)
PHOTOS_32 = make_tiny_images(classes=3, per_class=4, size=32, seed=0, kind="photos")


def scaled(images):
    return images.astype("float32") / 255.0


def recalibrate_as_one_batch(model, x):
    """Precise BN over the whole (tiny) data set as one batch, as users often write it."""
    recalibrate_batchnorm(model, x, batch_size=len(x))


def residual_dropout():
    return Pipeline(
        name="residual-dropout-0.5",
        build_model=functools.partial(families.residual_net, dropout=0.5),
        data=DATA,
        preprocess_train=scaled,
        fit_kwargs={"epochs": 15, "batch_size": 4},
        after_fit=recalibrate_after_fit,
    )


def residual_binary_dropout():
    return Pipeline(
        name="residual-binary-dropout",
        build_model=functools.partial(families.residual_net, classes=2, dropout=0.5),
        data=BINARY,
        preprocess_train=scaled,
        fit_kwargs={"epochs": 15, "batch_size": 4},
        after_fit=recalibrate_as_one_batch,
    )


def efficientnet_stochastic_depth():
    """EfficientNetB0 (its blocks' stochastic depth is Dropout with noise_shape), Rescaling and
    Normalization inside the model, recalibrated over all 12 images as one batch."""
    return Pipeline(
        name="efficientnetb0-stochastic-depth",
        build_model=functools.partial(families.application_with_head, "EfficientNetB0"),
        data=PHOTOS_32,
        fit_kwargs={"epochs": 10, "batch_size": 12},
        after_fit=recalibrate_as_one_batch,
    )


PHOTOS_16 = make_tiny_images(classes=3, per_class=4, size=16, seed=0, kind="photos")


def residual_stale_batchnorm():
    """The first report on another family: its photographs, one batch per step, ten steps at momentum
    0.99. (On the 12 pattern images the stale statistics raised evaluate's loss tenfold but, at seeds
    1-3, left every image's class as it was: no gap in accuracy to gate.)"""
    return Pipeline(
        name="residual-stale-batchnorm",
        build_model=families.residual_net,
        data=PHOTOS_16,
        preprocess_train=scaled,
        fit_kwargs={"epochs": 10, "batch_size": 12},
    )


CASES = [
    correct(residual_dropout, "none: Dropout(0.5) active in fit, so fit's epoch average is below evaluate"),
    correct(residual_binary_dropout, "none: binary sigmoid head, Dropout(0.5), BN recalibrated as one batch"),
    correct(efficientnet_stochastic_depth, "none: EfficientNetB0's stochastic depth, BN recalibrated as one batch"),
    broken(
        residual_stale_batchnorm,
        "BN moving statistics stale after 10 steps, on a residual net",
        agreement=r"evaluate vs train-mode(.|\n)*Cause: stale BatchNormalization moving statistics",
    ),
]


# -- issue 36: a sigmoid head under categorical cross-entropy -----------------------------------


def _head(build, activation):
    """`build`'s model with its last layer's activation set to `activation`, compiled with
    categorical cross-entropy on one-hot labels."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    model = build()
    model.layers[-1].activation = keras.activations.get(activation)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _one_hot(name, build, activation):
    return Pipeline(
        name=name,
        build_model=functools.partial(_head, build, activation),
        data=DATA,
        preprocess_train=scaled,
        label_encoding="one_hot",
        fit_kwargs={"epochs": 15, "batch_size": 4},
        after_fit=recalibrate_after_fit,
    )


def sigmoid_head_categorical_crossentropy():
    """keras-team/keras#6421: Dense(..., activation='sigmoid') compiled with categorical_crossentropy;
    evaluate and predict disagree (Keras scores softmax of the logits beneath the sigmoid)."""
    from broken_pipelines.common import compiled_cnn

    return _one_hot("sigmoid-head-categorical-ce", compiled_cnn, "sigmoid")


def softmax_head_categorical_crossentropy():
    """keras-team/keras#6421's fix: a softmax head for the categorical cross-entropy."""
    from broken_pipelines.common import compiled_cnn

    return _one_hot("softmax-head-categorical-ce", compiled_cnn, "softmax")


def residual_sigmoid_head_categorical_crossentropy():
    return _one_hot("residual-sigmoid-head-categorical-ce", families.residual_net, "sigmoid")


def residual_softmax_head_categorical_crossentropy():
    return _one_hot("residual-softmax-head-categorical-ce", families.residual_net, "softmax")


CASES += [
    broken(
        sigmoid_head_categorical_crossentropy,
        "sigmoid head under categorical_crossentropy",
        agreement=r"Gap: predict vs evaluate: loss(.|\n)*categorical_crossentropy on a sigmoid output",
        labels=r"from_logits=False on outputs that are not probabilities",
    ),
    correct(softmax_head_categorical_crossentropy, "none: softmax head under categorical_crossentropy (the fix)"),
    broken(
        residual_sigmoid_head_categorical_crossentropy,
        "sigmoid head under categorical_crossentropy, on a residual net",
        agreement=r"Gap: predict vs evaluate: loss(.|\n)*categorical_crossentropy on a sigmoid output",
        labels=r"from_logits=False on outputs that are not probabilities",
    ),
    correct(residual_softmax_head_categorical_crossentropy, "none: the residual net's softmax head (the fix)"),
]
