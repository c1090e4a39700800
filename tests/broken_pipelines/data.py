"""Pipelines whose data reaches the model wrong: preprocessing, labels, loss and outputs.

Each is `small_pipeline()` with one change. `small_pipeline(preprocess_train=f)` keeps the
old `preprocess_infer` (dataclasses.replace copies the filled-in field), so a changed
training path passes `preprocess_infer` too.
"""

import functools

import numpy as np

from broken_pipelines.common import CLASSES, DATA, broken, compiled_cnn, correct, small_pipeline
from pipeline_checks import make_tiny_images
from pipeline_checks.pipelines.pipeline import to_float
from pipeline_checks.testing.small_models import small_bn_cnn

# A validation split with one class directory gone: its classes are indexed 0, 1 for what
# training calls 0 and 2.
_SPLIT = make_tiny_images(classes=CLASSES, per_class=2, size=16, seed=1)
_KEPT = _SPLIT.labels != 1
VALIDATION_WITHOUT_CLASS_1 = (
    _SPLIT.images[_KEPT],
    np.where(_SPLIT.labels[_KEPT] == 2, 1, 0),
    (_SPLIT.class_names[0], _SPLIT.class_names[2]),
)
VALIDATION = (_SPLIT.images, _SPLIT.labels, _SPLIT.class_names)


def scale_to_unit(images):
    return images.astype("float32") / 255.0


def scale_to_tf(images):
    return images.astype("float32") / 127.5 - 1.0


def rotate_half_by_180(images):
    """Augmentation: about half the images turned by 180 degrees, then scaled.

    A half turn keeps a grating's orientation, hence its class; a mirror flip would not.
    The generator is seeded per call, so two runs see the same augmented images.
    """
    x = scale_to_unit(images)
    turned = np.random.default_rng(0).random(len(x)) < 0.5
    x[turned] = x[turned, ::-1, ::-1]
    return x


def compiled_logits_cnn(from_logits: bool = True, learning_rate: float = 0.01):
    """The small CNN with a linear last layer: it outputs logits, not probabilities."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    base = small_bn_cnn((16, 16, 3), classes=CLASSES)
    logits = keras.layers.Dense(CLASSES, name="logits")(base.layers[-2].output)
    model = keras.Model(base.input, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )
    return model


def compiled_softmax_cnn_from_logits():
    from pipeline_checks.model import compat

    keras = compat.keras()
    return compiled_cnn(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def compiled_cnn_without_normalization(learning_rate: float = 0.01):
    """Conv-ReLU-pool twice and a softmax head: nothing rescales inputs inside the model."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.GlobalAveragePooling2D(),
            layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


# -- preprocessing ------------------------------------------------------------------------


def inference_skips_rescaling():
    return small_pipeline("infer-raw-pixels", preprocess_infer=to_float)


def mobilenet_v2_inputs_in_unit_range():
    return small_pipeline("mobilenetv2-rescale-1-255", application="MobileNetV2")


def mobilenet_v2_inputs_in_tf_range():
    return small_pipeline(
        "mobilenetv2-tf-scaling", application="MobileNetV2", preprocess_train=scale_to_tf, preprocess_infer=None
    )


def augmented_by_half_turns():
    return small_pipeline("augmented-half-turns", preprocess_train=rotate_half_by_180, preprocess_infer=scale_to_unit)


# -- labels -------------------------------------------------------------------------------


def one_based_labels():
    return small_pipeline(
        "labels-1-based",
        data=(DATA.images, DATA.labels + 1, DATA.class_names),
        build_model=functools.partial(compiled_cnn, classes=CLASSES + 1),
    )


def softmax_with_from_logits():
    return small_pipeline("softmax-from-logits-true", build_model=compiled_softmax_cnn_from_logits)


def logits_without_from_logits():
    return small_pipeline(
        "logits-from-logits-false", build_model=functools.partial(compiled_logits_cnn, from_logits=False)
    )


def logits_with_from_logits():
    return small_pipeline("logits-from-logits-true", build_model=compiled_logits_cnn)


def one_hot_labels():
    return small_pipeline(
        "one-hot-categorical",
        label_encoding="one_hot",
        build_model=functools.partial(compiled_cnn, loss="categorical_crossentropy"),
    )


def validation_split_missing_a_class():
    return small_pipeline("validation-missing-class", validation_data=VALIDATION_WITHOUT_CLASS_1)


def validation_split_complete():
    return small_pipeline("validation-complete", validation_data=VALIDATION)


def raw_pixels_without_normalization():
    return small_pipeline(
        "raw-pixels-no-normalization",
        build_model=compiled_cnn_without_normalization,
        preprocess_train=to_float,
        preprocess_infer=None,
    )


# Keras 3 raises a shape error at the first fit for these two, so every training check
# errors on them: they are tested in test_check_labels.py, not rows of the matrix.
def sparse_labels_with_categorical_crossentropy():
    return small_pipeline(
        "sparse-categorical-ce", build_model=functools.partial(compiled_cnn, loss="categorical_crossentropy")
    )


def one_hot_labels_with_sparse_crossentropy():
    return small_pipeline("one-hot-sparse-ce", label_encoding="one_hot")


# The images in a shuffled order, as mnist_convnet's x_train arrives from mnist.load_data().
_SHUFFLED = np.random.default_rng(3).permutation(len(DATA))
SHUFFLED_DATA = (DATA.images[_SHUFFLED], DATA.labels[_SHUFFLED], DATA.class_names)
VALIDATION_SPLIT_FIT = {"epochs": 15, "batch_size": 4, "validation_split": 1 / 3}  # 8 images: two whole batches


def validation_split_shuffled():
    """keras.io's mnist_convnet, `model.fit(x_train, y_train, ..., validation_split=0.1)`: fit trains on
    the first images and validates on the last. The checks judge the 8 images fit trained on."""
    return small_pipeline("validation-split", data=SHUFFLED_DATA, fit_kwargs=VALIDATION_SPLIT_FIT)


def residual_validation_split_shuffled():
    from broken_pipelines import families

    return small_pipeline(
        "residual-validation-split",
        build_model=families.residual_net,
        data=SHUFFLED_DATA,
        fit_kwargs=VALIDATION_SPLIT_FIT,
    )


def validation_split_class_sorted():
    """`validation_split` on arrays sorted by class: Keras holds out the last images before shuffling
    (its FAQ, "How is the validation split computed?"), here the whole of the last class, so fit never
    trains on it and val_accuracy stays 0 (the Stack Overflow question "Keras validation accuracy is
    0 with validation_split", answered by shuffling the arrays first)."""
    return small_pipeline("validation-split-class-sorted", fit_kwargs=VALIDATION_SPLIT_FIT)


CASES = [
    correct(mobilenet_v2_inputs_in_tf_range),
    correct(augmented_by_half_turns),
    correct(one_hot_labels),
    correct(logits_with_from_logits),
    broken(
        inference_skips_rescaling,
        "inference feeds raw 0..255 pixels, training / 255",
        preprocessing=r"preprocess_train and preprocess_infer give different inputs(.|\n)*training feeds pixels / "
        r"255(.|\n)*inference feeds raw pixels 0\.\.255",
    ),
    broken(
        mobilenet_v2_inputs_in_unit_range,
        "MobileNetV2 fed [0, 1] inputs instead of [-1, 1]",
        preprocessing=r"inputs do not follow MobileNetV2's preprocess_input: range \[0, 1\], where MobileNetV2 "
        r"expects \[-1, 1\]",
    ),
    broken(
        one_based_labels,
        "labels 1..3 with 4 outputs",
        labels=r"data labels run 1\.\.3 for 3 classes(.|\n)*the model outputs 4 scores for 3 classes",
    ),
    broken(
        softmax_with_from_logits,
        "softmax output with from_logits=True",
        labels=r"from_logits=True on outputs that are already probabilities",
        # Keras 3 on TensorFlow uses the logits beneath the softmax in fit and evaluate;
        # the loss recomputed from predict outputs applies softmax twice.
        agreement=r"Gap: predict vs evaluate: loss",
    ).on(
        ("jax", "torch"),
        "Keras uses the logits beneath a softmax only on TensorFlow: on JAX and torch fit, "
        "evaluate and predict all apply softmax twice, so the modes agree",
        labels=r"from_logits=True on outputs that are already probabilities",
    ),
    broken(
        logits_without_from_logits,
        "linear output with from_logits=False",
        labels=r"from_logits=False on outputs that are not probabilities(.|\n)*the from_logits mismatch above",
        overfit=r"below the target 1",  # the loss sticks at ln 3 after two epochs
    ),
    broken(
        validation_split_missing_a_class,
        "validation split missing a class: indices shift",
        labels=r"class 'patterns_01' is missing from validation_data(.|\n)*'patterns_02' is 2 in training but 1 in "
        r"validation",
    ),
    broken(
        raw_pixels_without_normalization,
        "raw 0..255 pixels into a model without normalization",
        labels=r"loss at initialization [0-9.e+]+, expected about ln 3",
    )
    .on(
        "jax",
        "with JAX's initial weights the raw pixels start the loss at 5.37 and Adam does not recover in "
        "15 epochs (best accuracy 0.33), so overfit catches it too",
        labels=r"loss at initialization [0-9.e+]+, expected about ln 3",
        overfit=r"below the target 1",
    )
    .on(
        "torch",
        "with torch's initial weights the raw pixels saturate the softmax: 8 of 12 images start at the "
        "clipped loss 16.1 (probability 1e-7, mean 10.75) and the other 4 at probability 1, where the clipped "
        "crossentropy has zero gradient, so no weight ever moves",
        labels=r"loss at initialization [0-9.e+]+, expected about ln 3",
        overfit=r"below the target 1",
        variables_change=r"6 of 6 trainable weights never changed",
    ),
    correct(validation_split_shuffled, "none: fit_kwargs validation_split=1/3 on shuffled arrays (mnist_convnet)"),
    correct(residual_validation_split_shuffled, "none: the same on the residual net"),
    broken(
        validation_split_class_sorted,
        "validation_split=1/3 on class-sorted arrays: the last class is held out of training",
        labels=r"training labels cover 2 of 3 classes(.|\n)*validation_split",
    ),
]
