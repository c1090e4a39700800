"""A small convolutional network with BatchNormalization, cheap enough to fit per example."""

from __future__ import annotations

from typing import Any

from pipeline_checks._validation import check_integer, check_number, is_integer


def small_bn_cnn(
    input_shape: tuple[int, int, int] = (16, 16, 3),
    classes: int = 3,
    blocks: int = 2,
    filters: int = 8,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    dropout: float = 0.0,
    name: str | None = None,
):
    """Build an uncompiled Conv-BatchNorm-ReLU network: the smallest model with stale-BN gaps.

    Each block is Conv2D 3x3 ("same" padding), BatchNormalization, ReLU, then MaxPooling2D 2
    while the feature map is at least 2 pixels high and wide. Global average pooling, an
    optional Dropout and a softmax Dense layer follow.

    Args:
        input_shape: `(height, width, channels)` of the inputs.
        classes: number of output classes, at least 2.
        blocks: number of Conv-BN-ReLU blocks, at least 1.
        filters: filters of every convolution, at least 1.
        momentum: BatchNormalization momentum, in [0, 1).
        epsilon: BatchNormalization epsilon, a positive number.
        dropout: Dropout rate before the classifier, in [0, 1); 0 adds no Dropout layer.
        name: the model's name; default: Keras' own.

    Returns:
        An uncompiled functional `keras.Model` with softmax outputs of shape `(None, classes)`.

    Example:
        >>> model = small_bn_cnn((8, 8, 1), classes=2, blocks=1, momentum=0.9)
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    """
    input_shape = _checked_input_shape(input_shape)
    check_integer("classes", classes, minimum=2)
    check_integer("blocks", blocks, minimum=1)
    check_integer("filters", filters, minimum=1)
    check_number("momentum", momentum, "in [0, 1)", 0, 1)
    check_number("dropout", dropout, "in [0, 1)", 0, 1)
    check_number("epsilon", epsilon, "a positive number", low=0, low_open=True)

    from pipeline_checks.model import compat

    keras = compat.keras()
    layers = keras.layers
    inputs = keras.Input(shape=input_shape)
    x = inputs
    height, width = input_shape[:2]
    for _ in range(int(blocks)):
        x = layers.Conv2D(int(filters), 3, padding="same")(x)
        x = layers.BatchNormalization(momentum=float(momentum), epsilon=float(epsilon))(x)
        x = layers.ReLU()(x)
        if height >= 2 and width >= 2:
            x = layers.MaxPooling2D(2)(x)
            height, width = height // 2, width // 2
    x = layers.GlobalAveragePooling2D()(x)
    if dropout > 0:
        x = layers.Dropout(float(dropout))(x)
    outputs = layers.Dense(int(classes), activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def _checked_input_shape(input_shape: Any) -> tuple[int, int, int]:
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(is_integer(v) and v >= 1 for v in input_shape)
    ):
        raise ValueError(
            f"input_shape must be (height, width, channels) of positive integers; received: input_shape={input_shape!r}"
        )
    return tuple(int(v) for v in input_shape)
