"""Hypothesis strategies for property tests of training pipelines: data, input ranges, BN setups.

Every parameter takes a fixed value or a strategy. Fixed values are checked when the
strategy is built and generated ones when they are drawn; both raise hypothesis'
`InvalidArgument`, as hypothesis' own strategies do for bad arguments. Keras is imported
only when a model is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from pipeline_checks._validation import is_integer, is_number
from pipeline_checks.testing.datasets import KINDS, make_tiny_images
from pipeline_checks.testing.photos import photo_names
from pipeline_checks.testing.small_models import small_bn_cnn

COMMON_VALUE_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))


def _integer_of_at_least(minimum: int) -> tuple[str, Callable[[Any], bool]]:
    return f"an integer of at least {minimum}", lambda v: is_integer(v) and v >= minimum


_IN_UNIT_INTERVAL = ("a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1)

# Parameter name -> (what it must be, test). The strategies' parameter names, plural
# where a parameter chooses among several values, as the datasets' own.
_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "classes": _integer_of_at_least(2),
    "per_class": _integer_of_at_least(1),
    "sizes": _integer_of_at_least(1),
    "channels": ("1 or 3", lambda v: is_integer(v) and v in (1, 3)),
    "kinds": (f"one of {', '.join(KINDS)}", lambda v: isinstance(v, str) and v in KINDS),
    "seeds": _integer_of_at_least(0),
    "momentum": _IN_UNIT_INTERVAL,
    "epsilon": ("a finite number above 0", lambda v: is_number(v) and math.isfinite(v) and v > 0),
    "batch_size": _integer_of_at_least(1),
    "epochs": _integer_of_at_least(1),
    "blocks": _integer_of_at_least(1),
    "dropout": _IN_UNIT_INTERVAL,
}


def _fixed(name: str, value: Any) -> SearchStrategy:
    """A strategy for `value`, checked now; a strategy is wrapped to check what it draws."""
    expected, ok = _RULES[name]
    if isinstance(value, SearchStrategy):
        return value.map(lambda drawn: _drawn(name, value, drawn))
    if not ok(value):
        hint = ""
        if isinstance(value, (list, tuple, set, frozenset)):
            hint = f" (to choose among several, pass st.sampled_from({list(value)!r}))"
        raise InvalidArgument(
            f"{name} must be {expected}, or a strategy that generates such values; received: {name}={value!r}{hint}"
        )
    return st.just(value)


def _drawn(name: str, strategy: SearchStrategy, value: Any) -> Any:
    expected, ok = _RULES[name]
    if not ok(value):
        raise InvalidArgument(
            f"{name} generated {value!r}, but each value must be {expected}; received: {name}={strategy!r}"
        )
    return value


def tiny_datasets(
    classes: int | SearchStrategy[int] = st.integers(2, 5),
    per_class: int | SearchStrategy[int] = st.integers(1, 4),
    sizes: int | SearchStrategy[int] = st.sampled_from([8, 12, 16]),
    channels: int | SearchStrategy[int] = st.sampled_from([1, 3]),
    kinds: str | SearchStrategy[str] = st.sampled_from(["patterns", "noise"]),
    seeds: int | SearchStrategy[int] = st.integers(0, 2**32 - 1),
) -> SearchStrategy:
    """Generate tiny image datasets with `make_tiny_images`.

    Falsifying examples print as the call that rebuilds them, e.g.
    `make_tiny_images(classes=2, per_class=1, size=8, channels=1, seed=0, kind='patterns')`.

    Args:
        classes: number of classes, at least 2 (at most 6 for "photos").
        per_class: images per class, at least 1.
        sizes: side of the square images in pixels, at least 1.
        channels: 1 (grayscale) or 3 (RGB).
        kinds: "patterns", "noise" or "photos" (see `make_tiny_images`).
        seeds: seed of the pixels, at least 0.

    Each takes a fixed value or a strategy of them.

    Returns:
        A strategy of `TinyImageDataset`s.

    Raises:
        InvalidArgument: for a value that cannot make a dataset (when the strategy is
            built for fixed values, when drawn for generated ones).

    Example:
        >>> @given(data=tiny_datasets(classes=3, sizes=st.sampled_from([8, 16])))
        ... def test_labels_are_ordered(data):
        ...     assert list(data.labels) == sorted(data.labels)
    """
    if isinstance(kinds, str) and kinds == "photos" and is_integer(classes) and classes > len(photo_names()):
        raise InvalidArgument(
            f"kinds='photos' has {len(photo_names())} photographs, one per class; received: classes={classes!r}"
        )
    return st.builds(
        make_tiny_images,
        classes=_fixed("classes", classes),
        per_class=_fixed("per_class", per_class),
        size=_fixed("sizes", sizes),
        channels=_fixed("channels", channels),
        seed=_fixed("seeds", seeds),
        kind=_fixed("kinds", kinds),
    )


def value_ranges() -> SearchStrategy[tuple[float, float]]:
    """Generate `(low, high)` ranges that pipelines scale uint8 images into.

    First the common ones, (0, 1), (-1, 1) and (0, 255), towards which failures shrink;
    then any range with -255 <= low < high <= 510 at least 0.01 wide.

    Returns:
        A strategy of `(low, high)` float pairs, for `scale_images`.

    Example:
        >>> @given(data=tiny_datasets(), value_range=value_ranges())
        ... def test_inputs_stay_in_range(data, value_range):
        ...     x = scale_images(data.images, value_range)
        ...     assert value_range[0] <= x.min() and x.max() <= value_range[1]
    """
    arbitrary = st.tuples(
        st.floats(-255.0, 255.0, allow_subnormal=False),
        st.floats(0.01, 255.0, allow_subnormal=False),
    ).map(lambda low_width: (low_width[0], low_width[0] + low_width[1]))
    # low + 0.01 - low can round to 0.00999...: keep the promise exactly (rarely filters).
    arbitrary = arbitrary.filter(lambda low_high: low_high[1] - low_high[0] >= 0.01)
    return st.sampled_from(COMMON_VALUE_RANGES) | arbitrary


def scale_images(images, value_range: tuple[float, float]) -> np.ndarray:
    """Map pixel values 0..255 linearly onto `value_range`, as model inputs.

    Args:
        images: uint8 images (any numeric dtype is read as 0..255 pixels).
        value_range: `(low, high)`, finite, with low < high: 0 becomes low, 255 high.

    Returns:
        A float32 array of the same shape.

    Example:
        >>> scale_images(np.array([0, 51, 255], "uint8"), (-1.0, 1.0))
        array([-1. , -0.6,  1. ], dtype=float32)
    """
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or not all(is_number(v) and math.isfinite(v) for v in value_range)
        or not value_range[0] < value_range[1]
    ):
        raise ValueError(
            f"value_range must be (low, high) with finite numbers and low < high; received: value_range={value_range!r}"
        )
    low, high = (float(v) for v in value_range)
    pixels = np.asarray(images, dtype=np.float64)
    return (low + pixels * ((high - low) / 255.0)).astype(np.float32)


@dataclass(frozen=True)
class BatchNormConfig:
    """How a small BatchNorm network is built and fit.

    Attributes:
        momentum: BatchNormalization momentum, in [0, 1).
        epsilon: BatchNormalization epsilon, above 0.
        batch_size: fit's batch size, at least 1.
        epochs: fit's epochs, at least 1.
        blocks: Conv-BN-ReLU blocks, at least 1.
        dropout: Dropout rate before the classifier, in [0, 1); 0 (no Dropout layer)
            keeps training mode deterministic.
    """

    momentum: float
    epsilon: float
    batch_size: int
    epochs: int
    blocks: int
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("momentum", "epsilon", "batch_size", "epochs", "blocks", "dropout"):
            expected, ok = _RULES[name]
            value = getattr(self, name)
            if not ok(value):
                raise ValueError(f"{name} must be {expected}; received: {name}={value!r}")

    def build(self, input_shape: tuple[int, int, int], classes: int):
        """A compiled `small_bn_cnn` with this configuration.

        Args:
            input_shape: `(height, width, channels)` of the inputs.
            classes: number of classes, at least 2.

        Returns:
            A Keras model compiled with Adam, sparse categorical cross-entropy and accuracy;
            fit it with `batch_size=self.batch_size, epochs=self.epochs`.
        """
        model = small_bn_cnn(
            tuple(input_shape),
            classes=classes,
            blocks=self.blocks,
            momentum=self.momentum,
            epsilon=self.epsilon,
            dropout=self.dropout,
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


def batchnorm_configs(
    momentum: float | SearchStrategy[float] = st.floats(0, 0.999),
    epsilon: float | SearchStrategy[float] = st.sampled_from([1e-5, 1e-3, 1e-2]),
    batch_size: int | SearchStrategy[int] = st.integers(1, 8),
    epochs: int | SearchStrategy[int] = st.integers(1, 3),
    blocks: int | SearchStrategy[int] = st.integers(1, 3),
    dropout: float | SearchStrategy[float] = 0.0,
) -> SearchStrategy[BatchNormConfig]:
    """Generate BatchNorm network and training configurations.

    Args:
        momentum: BatchNormalization momentum, in [0, 1).
        epsilon: BatchNormalization epsilon, above 0.
        batch_size: fit's batch size, at least 1.
        epochs: fit's epochs, at least 1.
        blocks: Conv-BN-ReLU blocks, at least 1.
        dropout: Dropout rate before the classifier, in [0, 1). The default 0 keeps
            training-mode outputs deterministic; generate rates only where that is not needed.

    Each takes a fixed value or a strategy of them.

    Returns:
        A strategy of `BatchNormConfig`s.

    Raises:
        InvalidArgument: for a value outside the ranges above (when the strategy is built
            for fixed values, when drawn for generated ones).

    Example:
        >>> @given(data=tiny_datasets(), config=batchnorm_configs(epochs=1))
        ... def test_fit_runs(data, config):
        ...     model = config.build(data.images.shape[1:], data.classes)
        ...     x = scale_images(data.images, (0, 1))
        ...     model.fit(x, data.labels, batch_size=config.batch_size, epochs=config.epochs)
    """
    return st.builds(
        BatchNormConfig,
        momentum=_fixed("momentum", momentum),
        epsilon=_fixed("epsilon", epsilon),
        batch_size=_fixed("batch_size", batch_size),
        epochs=_fixed("epochs", epochs),
        blocks=_fixed("blocks", blocks),
        dropout=_fixed("dropout", dropout),
    )
