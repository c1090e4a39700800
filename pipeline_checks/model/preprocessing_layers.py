"""Where a declared `keras.applications` model starts inside a model, and what it receives there.

Users often preprocess inside the model: `Rescaling(1/127.5, offset=-1)` in front of a frozen
MobileNetV2 base (the keras.io transfer-learning guide), a `Normalization` layer, a `Lambda`
calling `preprocess_input`, `Resizing` or `CenterCrop`. An application's conventions hold for
what its own layers receive, so they are judged there: after the model's own preprocessing,
never at the model's input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.model import compat
from pipeline_checks.model.layers import FoundLayer

# Weights whose names end so are learned filters or projections (Conv2D, DepthwiseConv2D,
# SeparableConv2D, Dense): the first layer holding one is where a network starts computing.
# Normalization's mean and variance and BatchNormalization's gamma and beta do not end so.
_LEARNED = "kernel"
FORWARD_BATCH = 16


@dataclass(frozen=True)
class ApplicationStart:
    """Where a declared application's layers start inside a model.

    Attributes:
        application: the application's name, e.g. "MobileNetV2".
        first: the application's first layer (its path from the model, and the layer).
        in_front: the model's own layers in front of it, in call order (its preprocessing:
            Rescaling, Normalization, data augmentation, ...); empty when the application
            takes the model's input unchanged by any layer.
    """

    application: str
    first: FoundLayer
    in_front: tuple[FoundLayer, ...]

    def described(self) -> str:
        """The model's own layers in front of the application, e.g. 'Rescaling(scale=0.00784, offset=-1)'."""
        return listed((describe_layer(found.layer) for found in self.in_front), shown=4)


def application_start(model, application: str) -> ApplicationStart | None:
    """Find where `application`'s layers start in `model`, and the model's own layers in front.

    The model's path runs from its input, into nested models, to its first learned layer (one
    with a kernel: the application's first convolution). The application starts there, or
    earlier by the layers it puts in front of its first convolution itself (those of a fresh
    `weights=None` build: none for MobileNetV2, ZeroPadding2D for ResNet50, Rescaling,
    Normalization and ZeroPadding2D for EfficientNetB0, whose rescaling is its own). A nested
    base, a base built on `input_tensor` and a flattened functional model are found alike, and
    a model that is the application starts at its input.

    Args:
        model: a built Keras model with one input.
        application: an application name known to `pipeline_checks.model.applications`.

    Returns:
        An `ApplicationStart`, or None when the model has several inputs or no learned layer
        on its path.

    Example:
        >>> application_start(model, "MobileNetV2").described()
        'Rescaling(scale=0.00784, offset=-1)'
    """
    if len(getattr(model, "inputs", None) or [None]) != 1:
        return None  # one array of images per pipeline: a second input has no raw images
    path = _path_to_first_learned_layer(model)
    if not path:
        return None
    start = _start(path, application)
    return ApplicationStart(application, path[start], tuple(path[:start]))


def _start(path: list[FoundLayer], application: str) -> int:
    """Where the application starts on `path`: where the path ends with exactly its leading
    layers, else as far back as the layers are of kinds it leads with (a build that adds one,
    as EfficientNet's imagenet weights add a Rescaling, still starts at the model's input)."""
    last = len(path) - 1
    if last == 0:
        return 0
    leading = _leading_classes(application)
    classes = tuple(type(found.layer).__name__ for found in path)
    if len(leading) <= last and classes[last - len(leading) : last] == leading:
        return last - len(leading)
    start = last
    while start > 0 and classes[start - 1] in leading:
        start -= 1
    return start


class _Received(Exception):
    """Raised from inside a forward pass once the recorded layer has its inputs."""


def inputs_received(model, layer, inputs, batch_size: int = FORWARD_BATCH) -> np.ndarray | None:
    """What `layer` receives when `model` runs on `inputs` in inference mode, as a NumPy array.

    The model runs forward as `predict` would (`training=False`: random augmentation and
    dropout pass inputs through); `layer.call` is wrapped meanwhile to record its first
    argument, then restored. This is the one seam that reads a value inside a model on every
    backend (Keras 2 and 3; TensorFlow, JAX and PyTorch) without rebuilding its graph. Each
    batch's pass stops where the layer is first called: the layers after it would be a whole
    eager forward pass, which on JAX compiles every op (10 s for MobileNetV2).

    Args:
        model: a Keras model.
        layer: one of its layers, nested models included.
        inputs: the model's inputs, a batch of arrays.
        batch_size: how many inputs to run at once.

    Returns:
        The inputs `layer` received first in each batch's pass, one per input; None when it
        was not called (a layer off the model's path).
    """
    recorded = []
    original = layer.call

    def recording(*args, **kwargs):
        received = args[0] if args else kwargs.get("inputs", next(iter(kwargs.values()), None))
        recorded.append(compat.to_numpy(received))
        raise _Received

    had_own_call = "call" in vars(layer)
    layer.call = recording  # an instance attribute: Layer.__call__ looks `call` up on each call
    try:
        batches = range(0, len(inputs), batch_size)
        for start in batches:
            try:
                model(inputs[start : start + batch_size], training=False)
            except _Received:
                pass
    finally:
        if had_own_call:
            layer.call = original
        else:
            del layer.call
    if len(recorded) != len(batches):
        return None
    return np.concatenate([np.asarray(r, dtype=np.float64) for r in recorded])


def describe_layer(layer) -> str:
    """A preprocessing layer with what it does, e.g. 'Rescaling(scale=0.00392, offset=0)'."""
    kind = type(layer).__name__
    config = _config(layer)
    if kind == "Rescaling":
        return f"Rescaling(scale={_value(config.get('scale'))}, offset={_value(config.get('offset', 0))})"
    if kind == "Normalization":
        if config.get("mean") is None:
            return "Normalization(adapted)"
        return f"Normalization(mean={_value(config['mean'])}, variance={_value(config.get('variance'))})"
    if kind in ("Resizing", "CenterCrop") and "height" in config:
        return f"{kind}({config['height']}, {config['width']})"
    if kind == "Lambda":
        function = getattr(layer, "function", None)
        module = (getattr(function, "__module__", "") or "").rsplit(".", 1)[-1]
        name = getattr(function, "__name__", "?")
        return f"Lambda({module}.{name})" if module and name != "<lambda>" else f"Lambda({name})"
    if kind == "TFOpLambda":  # Keras 2 records a TensorFlow op on a symbolic tensor as this layer
        return f"TFOpLambda({getattr(layer, 'symbol', '?')})"
    return kind


def _path_to_first_learned_layer(model) -> list[FoundLayer]:
    """The layers from the model's input to its first learned layer, nested models entered,
    input layers left out; empty when no learned layer is reached."""
    path = []

    def visit(container, prefix) -> bool:  # True once the first learned layer is on the path
        for child in compat.sublayers(container):
            name = f"{prefix}{child.name}"
            if isinstance(child, compat.keras().Model):
                if visit(child, name + "/"):
                    return True
            elif type(child).__name__ != "InputLayer":
                path.append(FoundLayer(name, child))
                if _learned(child):
                    return True
        return False

    return path if visit(model, "") else []


def _learned(layer) -> bool:
    names = (str(getattr(w, "name", "")).split(":")[0].rsplit("/", 1)[-1] for w in layer.weights)
    return any(name.endswith(_LEARNED) for name in names)


@functools.cache
def _leading_classes(application: str) -> tuple[str, ...]:
    """The class names in front of a fresh build's first learned layer, e.g. ('ZeroPadding2D',).

    Built once per application and process, with its variables left uninitialized (only its
    layers are looked at): a table written by hand would go stale across the Keras versions
    whose stems differ.
    """
    from pipeline_checks.model.applications import APPLICATIONS

    spec = APPLICATIONS[application]
    build = functools.partial(
        getattr(compat.keras().applications, spec.name),
        weights=None,
        include_top=False,
        input_shape=(spec.min_size, spec.min_size, 3),
    )
    try:
        with compat.variables_left_uninitialized():
            return _classes_in_front(build())
    except Exception:  # noqa: BLE001 - a builder that reads a variable's value: build it in full
        return _classes_in_front(build())


def _classes_in_front(model) -> tuple[str, ...]:
    return tuple(type(found.layer).__name__ for found in _path_to_first_learned_layer(model)[:-1])


def _config(layer) -> dict:
    try:
        return layer.get_config()
    except Exception:  # a custom layer without get_config: described by its class alone
        return {}


def _value(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        flat = np.asarray(value, dtype=np.float64).ravel()
        return "[" + ", ".join(f"{v:.3g}" for v in flat) + "]"
    return f"{float(value):.3g}" if value is not None else "None"
