"""Model families beside the small CNN, written the way users write them, for correct twins.

The detection matrix is a sample of the world: every check must pass correct pipelines of
several families (functional residual nets, a keras.io-style Xception with in-model
Rescaling and a binary logit head, keras.applications bases frozen as in the keras.io
transfer-learning guide, dropout, regularization), not only the CNN its rows vary.
Each builder returns a fresh compiled model; all are small enough to fit in seconds.
"""

from __future__ import annotations

from pipeline_checks.model import compat


def residual_net(input_shape=(16, 16, 3), classes=3, filters=8, dropout=0.0, l2=0.0, learning_rate=0.01, seed=None):
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
    model = getattr(keras.applications, application)(weights=None, input_shape=input_shape, classes=classes, **kwargs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def regularized_cnn(input_shape=(16, 16, 3), classes=3, filters=8, l2=1e-2, activity_l2=0.0, learning_rate=0.01):
    """The small Conv-BN-ReLU CNN as users regularize it: L2 on every kernel (and optionally an
    activity L2 on the head's inputs), so the compiled loss is cross-entropy plus a penalty."""
    keras = compat.keras()
    layers = keras.layers
    regularizer = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=regularizer)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    if activity_l2:
        x = layers.ActivityRegularization(l2=activity_l2)(x)
    outputs = layers.Dense(classes, activation="softmax", kernel_regularizer=regularizer)(x)
    model = keras.Model(inputs, outputs, name="regularized_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def rescaled_frozen_application_base(
    application="MobileNetV2",
    scale=1 / 127.5,
    offset=-1.0,
    input_shape=(32, 32, 3),
    classes=3,
    dropout=0.2,
    learning_rate=1e-3,
    calibration=None,
    **base_kwargs,
):
    """keras.io "Transfer learning & fine-tuning" with its preprocessing inside the model, as the
    guide writes it: raw 0..255 pixels in, Rescaling(scale, offset) (the guide's 1/127.5, -1),
    a frozen keras.applications base (weights=None) called with training=False, then pooling,
    Dropout and a Dense head.

    `calibration`: images in the application's own convention (what its pretrained weights
    saw) whose statistics the base's BatchNorm layers take before it is frozen, standing in for
    pretrained weights: a frozen randomly initialized MobileNetV2 shrinks its activations to
    about 1e-12, where no head can fit.
    """
    from pipeline_checks import recalibrate_batchnorm

    keras = compat.keras()
    layers = keras.layers
    base = getattr(keras.applications, application)(
        weights=None, include_top=False, input_shape=input_shape, **base_kwargs
    )
    if calibration is not None:
        recalibrate_batchnorm(base, calibration, batch_size=len(calibration))
    base.trainable = False
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(scale, offset=offset)(inputs)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=f"rescaled_frozen_{application.lower()}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def rescaled_residual_net(
    scale=1 / 127.5, offset=-1.0, input_shape=(16, 16, 3), classes=3, learning_rate=0.01, **kwargs
):
    """A whole residual_net (nested, as a model called on a tensor) behind the model's own
    Rescaling(scale, offset): raw 0..255 pixels in, the scaling inside the model."""
    keras = compat.keras()
    inner = residual_net(input_shape=input_shape, classes=classes, learning_rate=learning_rate, **kwargs)
    inputs = keras.Input(shape=input_shape)
    outputs = inner(keras.layers.Rescaling(scale, offset=offset)(inputs))
    model = keras.Model(inputs, outputs, name="rescaled_residual_net")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=inner.loss, metrics=["accuracy"])
    return model


def frozen_conv_base(input_shape=(16, 16, 3), classes=3, filters=16, dropout=0.0, learning_rate=1e-3, optimizer=None):
    """A repository's own small Conv-BN-ReLU feature extractor reused as a frozen base (its
    trained weights are not in CI, so random here), called with training=False, under a Dense
    head: softmax, or one sigmoid unit for two classes. Its random features separate a dozen
    images slowly: in 10-15 epochs the head reaches 0.33-1.0 depending on the seed."""
    keras = compat.keras()
    layers = keras.layers
    base_inputs = keras.Input(shape=input_shape)
    x = base_inputs
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    base = keras.Model(base_inputs, layers.GlobalAveragePooling2D()(x), name="conv_base")
    base.trainable = False
    inputs = keras.Input(shape=input_shape)
    x = base(inputs, training=False)
    if dropout:
        x = layers.Dropout(dropout)(x)
    binary = classes == 2
    outputs = layers.Dense(1 if binary else classes, activation="sigmoid" if binary else "softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="frozen_conv_base")
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def application_with_head(application="EfficientNetB0", input_shape=(32, 32, 3), classes=3, learning_rate=1e-3):
    """A keras.applications base trained from scratch (weights=None) under a pooling + Dense head
    of the user's own, the way fine-tuning code builds it, everything trainable."""
    keras = compat.keras()
    base = getattr(keras.applications, application)(weights=None, include_top=False, input_shape=input_shape)
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=f"{application.lower()}_with_head")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model
