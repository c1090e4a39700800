"""Build `keras.applications` models by name with `weights=None`, and their preprocessing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline_checks._validation import is_integer


@dataclass(frozen=True)
class ApplicationSpec:
    """What pipeline-checks knows about one application.

    `preprocessing` is the mode of its `preprocess_input`: "caffe" (BGR, ImageNet means
    subtracted), "tf" (scaled to [-1, 1]), "torch" (scaled to [0, 1], then ImageNet mean
    and std) or "none" (the model rescales inside; `preprocess_input` is the identity).
    """

    name: str
    module: str
    min_size: int
    preprocessing: str


_SPECS = (
    ApplicationSpec("DenseNet121", "densenet", 32, "torch"),
    ApplicationSpec("EfficientNetB0", "efficientnet", 32, "none"),
    ApplicationSpec("InceptionResNetV2", "inception_resnet_v2", 75, "tf"),
    ApplicationSpec("InceptionV3", "inception_v3", 75, "tf"),
    ApplicationSpec("MobileNet", "mobilenet", 32, "tf"),
    ApplicationSpec("MobileNetV2", "mobilenet_v2", 32, "tf"),
    ApplicationSpec("ResNet50", "resnet50", 32, "caffe"),
    ApplicationSpec("ResNet50V2", "resnet_v2", 32, "tf"),
    ApplicationSpec("VGG16", "vgg16", 32, "caffe"),
    ApplicationSpec("Xception", "xception", 71, "tf"),
)
APPLICATIONS = {spec.name: spec for spec in _SPECS}


def known_applications() -> tuple[str, ...]:
    """Names `build_application` accepts, e.g. ('DenseNet121', ..., 'Xception')."""
    return tuple(APPLICATIONS)


def resolve_application_name(name: str) -> str:
    """The canonical spelling of an application name, matched case-insensitively."""
    by_lower = {known.lower(): known for known in APPLICATIONS}
    if not isinstance(name, str) or name.lower() not in by_lower:
        raise ValueError(f"Unknown application {name!r}; expected one of: {', '.join(APPLICATIONS)}.")
    return by_lower[name.lower()]


@dataclass(frozen=True)
class ApplicationModel:
    """A freshly built application and the preprocessing that matches it.

    Unpacks as `model, preprocess_input = build_application(...)`.
    """

    name: str
    model: Any
    preprocess_input: Callable[[Any], Any]
    input_shape: tuple[int, int, int]
    min_size: int
    preprocessing: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.preprocess_input))


def build_application(
    name: str,
    classes: int = 3,
    input_shape: int | tuple[int, ...] | None = None,
    channels: int = 3,
    weights: str | os.PathLike | None = None,
    **kwargs: Any,
) -> ApplicationModel:
    """Build a `keras.applications` model by name, without downloading anything.

    Args:
        name: an application name such as "ResNet50" (case-insensitive); see
            `known_applications()`.
        classes: number of output classes (at least 2).
        input_shape: the side of a square input, `(height, width)` or
            `(height, width, channels)`; default: the smallest size the model accepts.
        channels: 1 or 3, used when `input_shape` does not give them.
        weights: None (random initialization) or the path of a local weights file.
            "imagenet" is refused: nothing is downloaded.
        **kwargs: passed to the application constructor (e.g. `classifier_activation`).

    Returns:
        An `ApplicationModel` with `.model` (uncompiled) and `.preprocess_input`.

    Example:
        >>> model, preprocess = build_application("MobileNetV2", classes=3)
        >>> model.input_shape
        (None, 32, 32, 3)
    """
    from pipeline_checks.model import compat

    spec = APPLICATIONS[resolve_application_name(name)]
    shape = _input_shape(spec, input_shape, channels)
    _check_classes(classes)
    weights = _local_weights(weights)
    keras = compat.keras()
    constructor = getattr(keras.applications, spec.name)
    model = constructor(weights=None, input_shape=shape, classes=classes, **{"include_top": True, **kwargs})
    if weights is not None:
        model.load_weights(weights)
    return ApplicationModel(
        name=spec.name,
        model=model,
        preprocess_input=_preprocess_for(spec, shape[-1], keras),
        input_shape=shape,
        min_size=spec.min_size,
        preprocessing=spec.preprocessing,
    )


def _input_shape(spec: ApplicationSpec, input_shape, channels: int) -> tuple[int, int, int]:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; received: channels={channels!r}")
    if input_shape is None:
        shape = (spec.min_size, spec.min_size, channels)
    elif is_integer(input_shape):
        shape = (input_shape, input_shape, channels)
    elif isinstance(input_shape, (tuple, list)) and len(input_shape) in (2, 3):
        shape = (*input_shape, channels) if len(input_shape) == 2 else tuple(input_shape)
    else:
        raise ValueError(
            "input_shape must be an int side, (height, width) or (height, width, channels); "
            f"received: input_shape={input_shape!r}"
        )
    if not all(is_integer(v) for v in shape):
        raise ValueError(f"input_shape must hold integers; received: input_shape={input_shape!r}")
    if shape[2] not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; received: input_shape={input_shape!r}")
    if min(shape[:2]) < spec.min_size:
        raise ValueError(
            f"{spec.name} needs inputs of at least {spec.min_size}x{spec.min_size} pixels; "
            f"received: input_shape={shape!r}"
        )
    return shape


def _check_classes(classes: int) -> None:
    if not is_integer(classes) or classes < 2:
        raise ValueError(f"classes must be an integer of at least 2; received: classes={classes!r}")


def _local_weights(weights):
    if weights is None:
        return None
    if isinstance(weights, str) and weights.lower() == "imagenet":
        raise ValueError(
            "weights='imagenet' would download weights at run time, which pipeline-checks "
            "never does (CI machines are often offline and downloads make tests flaky). "
            "Use weights=None, or download the file once, commit or cache it, and pass its "
            "path: build_application(name, weights='path/to/weights.h5')."
        )
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"No weights file at weights={os.fspath(weights)!r}")
    return os.fspath(weights)


def _preprocess_for(spec: ApplicationSpec, channels: int, keras) -> Callable[[Any], Any]:
    preprocess = getattr(keras.applications, spec.module).preprocess_input
    if channels == 3 or spec.preprocessing in ("tf", "none"):
        return preprocess

    import numpy as np

    def preprocess_grayscale(x):
        # ImageNet statistics are per RGB channel; a grey image gets their average.
        rgb = np.repeat(np.asarray(x, dtype="float32"), 3, axis=-1)
        return np.asarray(preprocess(rgb)).mean(axis=-1, keepdims=True)

    return preprocess_grayscale


def preprocess_input_for(name: str, channels: int = 3) -> Callable[[Any], Any]:
    """The `preprocess_input` that matches application `name`, without building the model.

    Example:
        >>> preprocess_input_for("MobileNetV2")(np.full((1, 2, 2, 3), 255.0)).max()
        1.0
    """
    from pipeline_checks.model import compat

    return _preprocess_for(APPLICATIONS[resolve_application_name(name)], channels, compat.keras())
