"""Model families beside the small CNN, written the way users write them, for correct twins.

The detection matrix is a sample of the world: every check must pass correct pipelines of
several families (functional residual nets, a keras.io-style Xception with in-model
Rescaling and a binary logit head, keras.applications bases frozen as in the keras.io
transfer-learning guide, dropout, regularization), not only the CNN its rows vary.
Each builder returns a fresh compiled model; all are small enough to fit in seconds.
"""

from __future__ import annotations

from pipeline_checks.model import compat


def residual_net(
    input_shape=(16, 16, 3), classes=3, filters=8, dropout=0.0, l2=0.0, learning_rate=0.01, seed=None
):
    """A functional two-block ResNet (Conv-BN-ReLU, identity shortcuts), softmax or one sigmoid unit."""
    keras = compat.keras()
    layers = keras.layers
    regularizer = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=regularizer)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(2):
        shortcut = x
        x = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=regularizer)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=regularizer)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(layers.Add()([x, shortcut]))
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = layers.Dropout(dropout, seed=seed)(x)
    binary = classes == 2
    outputs = layers.Dense(1 if binary else classes, activation="sigmoid" if binary else "softmax")(x)
    model = keras.Model(inputs, outputs, name="residual_net")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def xception_style_binary(input_shape=(32, 32, 3), dropout=0.25, learning_rate=1e-3):
    """keras.io "Image classification from scratch" in miniature: Rescaling(1/255) in the model,
    separable convolutions with BatchNorm and residual projections, Dropout, one logit."""
    keras = compat.keras()
    layers = keras.layers
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    for size in (16, 32):
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation=None)(x)
    model = keras.Model(inputs, outputs, name="xception_style")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="acc", threshold=0.0)],
    )
    return model


def frozen_application_base(
    application="MobileNetV2", input_shape=(32, 32, 3), classes=3, dropout=0.2, learning_rate=1e-3, **base_kwargs
):
    """keras.io "Transfer learning & fine-tuning": a keras.applications base (weights=None here:
    nothing downloads), frozen, called with training=False, a pooling + Dropout + Dense head."""
    keras = compat.keras()
    layers = keras.layers
    base = getattr(keras.applications, application)(
        weights=None, include_top=False, input_shape=input_shape, **base_kwargs
    )
    base.trainable = False
    inputs = keras.Input(shape=input_shape)
    x = base(inputs, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    binary = classes == 2
    outputs = layers.Dense(1 if binary else classes, activation="sigmoid" if binary else "softmax")(x)
    model = keras.Model(inputs, outputs, name=f"frozen_{application.lower()}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def application(application="MobileNetV2", input_shape=(32, 32, 3), classes=3, learning_rate=1e-3, **kwargs):
    """A whole keras.applications model trained from scratch (weights=None), softmax head."""
    keras = compat.keras()
    model = getattr(keras.applications, application)(
        weights=None, input_shape=input_shape, classes=classes, **kwargs
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model
