"""Forward multiply-accumulates (MACs) of a Keras model, counted layer by layer from shapes.

The count follows the convention of published model sizes (the ResNet and MobileNetV2
papers, torchvision's model tables): only layers that multiply activations by weights
cost MACs, per image, bias excluded. One MAC is one multiplication plus one addition,
so FLOPs = 2 x MACs; the "4.1 GFLOPs" usually quoted for ResNet50 are MACs.

Nested Functional and Sequential models are walked, and a layer called several times
(shared weights) is counted once per call. Shapes come from the Keras graph: the shapes
the model was built with, or, when `input_shape` asks for another size, each layer's
`compute_output_spec` (Keras 2 has none: the layer is traced on placeholders in a scratch
graph instead). Nothing runs and no weights are read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_checks._validation import is_integer

Shape = tuple  # one tensor's shape without the batch dimension, e.g. (224, 224, 3)


@dataclass(frozen=True)
class FlopCount:
    """What `count_flops` found: forward cost per image, and what it could not count.

    Attributes:
        macs: forward multiply-accumulates per image.
        flops: forward FLOPs per image, `2 * macs`.
        training_step_flops: FLOPs of one training step per image, `3 * flops`: the usual
            approximation that the backward pass (gradients of activations and of
            weights) costs twice the forward pass. Optimizer updates are not included.
        by_layer_type: MACs per layer class name, largest first. Layers that are free by
            convention (see `count_flops`) appear with 0.
        ignored: sorted class names of layers whose cost is unknown and was left out, so
            `macs` is a lower bound unless this is empty.
    """

    macs: int
    by_layer_type: dict[str, int]
    ignored: tuple[str, ...] = ()
    flops: int = field(init=False)
    training_step_flops: int = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "flops", 2 * self.macs)
        object.__setattr__(self, "training_step_flops", 3 * self.flops)

    @property
    def gmacs(self) -> float:
        """Forward MACs per image, in billions."""
        return self.macs / 1e9


def count_flops(model, input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None) -> FlopCount:
    """Count a Keras model's forward multiply-accumulates per image, layer by layer.

    Counted, per image, bias excluded (channels last or first):

    - `Conv1D/2D/3D`: output positions x filters x kernel size x input channels / groups
      (strides and dilation act through the output size);
    - `DepthwiseConv1D/2D`: output positions x input channels x depth multiplier x kernel size;
    - `SeparableConv1D/2D`: its depthwise part plus its pointwise (1x1) part;
    - `Conv1D/2D/3DTranspose`: input positions x input channels x kernel size x filters;
    - `Dense`: input features x units, times the product of any extra leading dimensions.

    Free by convention (0 MACs; their cost is proportional to the activations' size, left
    out of published counts and under 1% of a convolutional network's): normalization,
    activation, pooling, merging (`Add`, `Multiply`, `Concatenate`, ...), rescaling,
    reshaping, padding, cropping, upsampling, dropout/noise, `Embedding` lookups and
    `Random*` augmentation layers. Any other layer or operation, with or without weights
    (`Lambda`, `EinsumDense`, `MultiHeadAttention`, subclassed layers), is listed in
    `ignored`, never silently dropped.

    Args:
        model: a Functional or Sequential Keras model; nested models inside it are
            walked. A Sequential model that was never built needs `input_shape`.
        input_shape: the shape of one input without the batch dimension, e.g.
            `(224, 224, 3)`, or a list of such shapes for a model with several inputs.
            Default: the shapes the model was built with, which must be fully known.

    Returns:
        A `FlopCount` with `macs`, `flops`, `training_step_flops`, `gmacs`,
        `by_layer_type` and `ignored`.

    Raises:
        ValueError: the model is not Functional or Sequential, is unbuilt with no
            `input_shape`, or a counted layer sees a dimension of unknown size.

    Example:
        >>> from pipeline_checks import build_application
        >>> model, _ = build_application("ResNet50", classes=1000, input_shape=224)
        >>> count = count_flops(model)
        >>> round(count.gmacs, 2), count.ignored
        (3.86, ())
    """
    if not _is_walkable(model):
        raise ValueError(
            "count_flops needs a Functional or Sequential Keras model, whose layers' shapes "
            f"it can see; received: model={model!r} of type {type(model).__name__}"
        )
    tally = _Tally(requested=input_shape)
    _walk(model, _input_shapes(model, input_shape), tally)
    by_type = dict(sorted(tally.macs.items(), key=lambda item: (-item[1], item[0])))
    return FlopCount(macs=sum(by_type.values()), by_layer_type=by_type, ignored=tuple(sorted(tally.ignored)))


# --- What each layer costs ------------------------------------------------------------


def _conv(layer, inputs: Shape, outputs: Shape) -> int:
    groups = getattr(layer, "groups", 1) or 1
    per_output = math.prod(layer.kernel_size) * _channels(layer, inputs) // groups
    return math.prod(_spatial(layer, outputs)) * _channels(layer, outputs) * per_output


def _depthwise(layer, inputs: Shape, outputs: Shape) -> int:
    # Output channels are input channels x depth multiplier; each sees one kernel window.
    return math.prod(_spatial(layer, outputs)) * _channels(layer, outputs) * math.prod(layer.kernel_size)


def _separable(layer, inputs: Shape, outputs: Shape) -> int:
    positions = math.prod(_spatial(layer, outputs))
    depthwise_channels = _channels(layer, inputs) * layer.depth_multiplier
    return positions * depthwise_channels * (math.prod(layer.kernel_size) + layer.filters)


def _conv_transpose(layer, inputs: Shape, outputs: Shape) -> int:
    # Every input position scatters one kernel per output channel.
    kernel = math.prod(layer.kernel_size)
    return math.prod(_spatial(layer, inputs)) * _channels(layer, inputs) * kernel * _channels(layer, outputs)


def _dense(layer, inputs: Shape, outputs: Shape) -> int:
    return math.prod(inputs) * layer.units


def _free(layer, inputs: Shape, outputs: Shape) -> int:
    return 0


_RULES: dict[str, Callable[[Any, Shape, Shape], int]] = {
    **dict.fromkeys(("Conv1D", "Conv2D", "Conv3D"), _conv),
    **dict.fromkeys(("DepthwiseConv1D", "DepthwiseConv2D"), _depthwise),
    **dict.fromkeys(("SeparableConv1D", "SeparableConv2D"), _separable),
    **dict.fromkeys(("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"), _conv_transpose),
    "Dense": _dense,
}

_FREE = frozenset(
    {
        # normalization and activations
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "Normalization",
        "Rescaling",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "Softmax",
        "ThresholdedReLU",
        # pooling
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        # merging
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        # moving data: reshaping, padding, cropping, resizing, lookups
        "InputLayer",
        "Identity",
        "Reshape",
        "Flatten",
        "Permute",
        "RepeatVector",
        "Masking",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "UpSampling1D",
        "UpSampling2D",
        "UpSampling3D",
        "Resizing",
        "CenterCrop",
        "Embedding",
        # regularization: identity or elementwise noise
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ActivityRegularization",
    }
)


def _rule_for(layer) -> Callable[[Any, Shape, Shape], int] | None:
    """The rule of the nearest known class in the layer's ancestry (a Conv2D subclass is a Conv2D)."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _RULES:
            return _RULES[cls.__name__]
        if cls.__name__ in _FREE or cls.__name__.startswith("Random"):
            return _free
    return None


def _channels(layer, shape: Shape) -> int:
    return shape[0] if getattr(layer, "data_format", None) == "channels_first" else shape[-1]


def _spatial(layer, shape: Shape) -> Shape:
    return shape[1:] if getattr(layer, "data_format", None) == "channels_first" else shape[:-1]


# --- Walking the graph ----------------------------------------------------------------


class _Tally:
    def __init__(self, requested):
        self.requested = requested
        self.macs: Counter[str] = Counter()
        self.ignored: set[str] = set()

    def account(self, layer, inputs: list[Shape], outputs: list[Shape]) -> None:
        name = type(layer).__name__
        rule = _rule_for(layer)
        if rule is None:
            self.ignored.add(name)
            return
        if rule is not _free:
            unknown = [s for s in (*inputs, *outputs) if any(d is None for d in s)]
            if unknown:
                raise ValueError(
                    f"Layer {layer.name!r} ({name}) sees a dimension of unknown size, "
                    f"{unknown[0]}, so its cost is unknown: pass the size of one input, "
                    f"e.g. count_flops(model, input_shape=(224, 224, 3)); "
                    f"received: input_shape={self.requested!r}"
                )
        self.macs[name] += rule(layer, inputs[0], outputs[0])


def _class_names(obj) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _is_walkable(obj) -> bool:
    return bool({"Functional", "Sequential"} & _class_names(obj))


def _shape(tensor) -> Shape:
    return tuple(None if d is None else int(d) for d in tuple(tensor.shape)[1:])


def _flat(structure) -> list:
    return list(structure) if isinstance(structure, (list, tuple)) else [structure]


def _declared_inputs(model) -> list | None:
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):  # an unbuilt Sequential model
        return None
    return _flat(inputs) if inputs else None


def _input_shapes(model, input_shape) -> list[Shape]:
    declared = _declared_inputs(model)
    if input_shape is None:
        if declared is None:
            raise ValueError(
                f"Model {model.name!r} is not built, so its input shape is unknown: start it "
                "with keras.Input(shape=...), call it on data, or pass the shape of one input, "
                f"e.g. count_flops(model, input_shape=(224, 224, 3)); received: input_shape=None"
            )
        return [_shape(t) for t in declared]
    shapes = _parse_input_shape(input_shape)
    if declared is not None and [len(_shape(t)) for t in declared] != [len(s) for s in shapes]:
        expected = [_shape(t) for t in declared]
        raise ValueError(
            f"input_shape must match the model's {len(expected)} input(s) of shape "
            f"{', '.join(map(str, expected))} without the batch dimension; received: input_shape={input_shape!r}"
        )
    return shapes


def _parse_input_shape(input_shape) -> list[Shape]:
    def is_size(value) -> bool:
        return is_integer(value) and value > 0

    if isinstance(input_shape, (tuple, list)) and input_shape:
        if all(is_size(d) for d in input_shape):
            return [tuple(input_shape)]
        if all(isinstance(s, (tuple, list)) and s and all(is_size(d) for d in s) for s in input_shape):
            return [tuple(s) for s in input_shape]
    raise ValueError(
        "input_shape must be the shape of one input without the batch dimension, e.g. "
        f"(224, 224, 3), or a list of such shapes; received: input_shape={input_shape!r}"
    )


def _walk(model, inputs: list[Shape], tally: _Tally) -> list[Shape]:
    """Account every layer of `model` fed with `inputs`; return its output shapes."""
    if "Sequential" in _class_names(model) and not hasattr(model, "_nodes_by_depth"):
        shapes = inputs
        for layer in model.layers:
            shapes = _call(layer, shapes, None, tally)
        return shapes
    known = {id(t): s for t, s in zip(_flat(model.inputs), inputs)}
    by_depth = model._nodes_by_depth
    for depth in sorted(by_depth, reverse=True):  # inputs first, as Keras runs the graph
        for node in by_depth[depth]:
            layer = getattr(node, "operation", None) or getattr(node, "layer", None)
            node_inputs = _node_inputs(node)
            if layer is None or not node_inputs or any(id(t) not in known for t in node_inputs):
                continue  # an input node, or one the outputs do not need
            outputs = _call(layer, [known[id(t)] for t in node_inputs], node, tally)
            known.update(zip((id(t) for t in _flat(node.outputs)), outputs))
    return [known[id(t)] for t in _flat(model.outputs)]


def _call(layer, inputs: list[Shape], node, tally: _Tally) -> list[Shape]:
    if _is_walkable(layer):
        return _walk(layer, inputs, tally)
    outputs = _recorded_outputs(layer, inputs, node)
    if outputs is None:
        outputs = _computed_outputs(layer, inputs, node)
    tally.account(layer, inputs, outputs)
    return outputs


def _node_inputs(node) -> list:
    inputs = getattr(node, "keras_inputs", None)  # Keras 2
    return list(inputs if inputs is not None else node.input_tensors)


def _recorded_outputs(layer, inputs: list[Shape], node) -> list[Shape] | None:
    """The output shapes Keras recorded when the layer was called on inputs of these shapes."""
    candidates = [node] if node is not None else getattr(layer, "_inbound_nodes", [])
    for candidate in candidates:
        if [_shape(t) for t in _node_inputs(candidate)] == inputs:
            return [_shape(t) for t in _flat(candidate.outputs)]
    return None


def _computed_outputs(layer, inputs: list[Shape], node) -> list[Shape]:
    from pipeline_checks.model import compat

    if not compat.is_keras3():
        return _traced_outputs(layer, inputs, node)
    keras = compat.keras()
    specs = [keras.KerasTensor((None, *s)) for s in inputs]
    if node is None:
        args, kwargs = tuple(specs), {}
    else:
        args, kwargs = node.arguments.fill_in({id(t): s for t, s in zip(_node_inputs(node), specs)})
    try:
        spec = layer.compute_output_spec(*args, **kwargs)
    except Exception as error:
        raise _not_inferred(layer, inputs, error) from error
    return [_shape(t) for t in keras.tree.flatten(spec)]


def _traced_outputs(layer, inputs: list[Shape], node) -> list[Shape]:
    """Keras 2 has no `compute_output_spec`: call the layer, with the node's other arguments,
    on placeholders in a scratch graph, as Keras 2's own default `compute_output_shape` does.
    Nothing runs, and no node is added to the model (placeholders are not Keras tensors)."""
    import tensorflow as tf

    if not layer.built:
        # A layer of an unbuilt Sequential model: calling it would create its weights at this
        # size, while Keras 2's built-in layers compute their output shape without building.
        try:
            shape = tf.TensorShape(layer.compute_output_shape((None, *inputs[0])))
        except Exception as error:
            raise _not_inferred(layer, inputs, error) from error
        return [tuple(shape.as_list()[1:])]
    node_inputs = _node_inputs(node) if node is not None else []
    with tf.__internal__.FuncGraph(f"{layer.name}_flops_scratch_graph").as_default():
        placeholders = [
            tf.compat.v1.placeholder(getattr(t, "dtype", None) or layer.dtype or tf.float32, (None, *s))
            for t, s in zip(node_inputs or [None] * len(inputs), inputs)
        ]
        if node is None:
            args, kwargs = tuple(placeholders), {}
        else:
            # map_arguments pops one tensor per use of an input, e.g. twice for attention(x, x).
            uses = {str(id(t)): [] for t in node_inputs}
            for t, placeholder in zip(node_inputs, placeholders):
                uses[str(id(t))].append(placeholder)
            args, kwargs = node.map_arguments(uses)
        try:
            outputs = layer(*args, **kwargs)
        except Exception as error:
            raise _not_inferred(layer, inputs, error) from error
        return [_shape(t) for t in tf.nest.flatten(outputs)]


def _not_inferred(layer, inputs: list[Shape], error: Exception) -> ValueError:
    return ValueError(
        f"Could not infer the output shape of layer {layer.name!r} ({type(layer).__name__}) "
        f"from inputs of shape {inputs}: {error}; received: input_shape={inputs}"
    )
