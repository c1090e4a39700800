"""A model's forward pass, `model(x, training=...)`, compiled once per architecture on JAX.

Eager JAX compiles each op the first time it runs: on 2 CPU cores MobileNetV2's first
training-mode pass takes 12 s eagerly and 3 s as one compiled function. So on JAX the checks'
passes run Keras' own `model.stateless_call` (what `fit`, `evaluate` and `predict` run there)
inside one `jax.jit` per mode, with the variables as arguments, and assign back the state it
returns (BN statistics, seed generators), as an eager call leaves it. Other backends call
the model.

Two models share the compiled functions (`share_compiled`: the run's model, the checks'
untrained build, the models loaded from save_load's files) once their class, config (layer
names aside) and variable shapes are found equal, and every layer is one of Keras' own
classes: those keep their state in variables and every constructor argument in `get_config`,
so an equal config is the same computation. A custom layer may hold state in plain
attributes or leave an argument out of its config, which a trace would bake in from the
first model traced: a model with one compiles its own, so that save_load still sees a
loaded model that computes something else.

What a compiled function cannot see is Python state read while tracing, so it is part of the
cache key (each layer's `trainable`, and a `call` replaced on the instance, as
`layers.training_only_layers_in_inference` does), except BatchNormalization's `momentum`,
which recalibration changes batch by batch: it is passed in as an argument. A model whose
layers add losses in `call` (activity regularizers) runs eagerly, since `compute_loss` reads
those from the eager call.
"""

from __future__ import annotations

import inspect
import weakref

from pipeline_checks.model import compat
from pipeline_checks.model.layers import find_batchnorm, walk_layers

_EAGER = object()


class _Functions:
    """The compiled passes of one architecture, by mode and traced Python state; `caller` is the
    model being run, which a first call traces."""

    def __init__(self, signature):
        self.signature = signature
        self.by_key: dict = {}
        self.caller = None


_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> _Functions


def share_compiled(model, reference) -> None:
    """Let `model` run with the compiled passes of `reference` where they are the same architecture:
    same class, config (layer names aside), variable shapes and dtypes, every layer Keras' own."""
    if compat.backend() != "jax" or model is reference or not getattr(model, "built", False):
        return
    functions = _functions(reference)
    if functions is not None and _keras_own_layers(model) and _signature(model) == functions.signature:
        _FUNCTIONS[model] = functions


# Keras' own layers that run code of the user's or another framework's, which no config shows.
RUNS_USER_CODE = ("Lambda", "JaxLayer", "FlaxLayer", "TorchModuleWrapper", "TFSMLayer")


def _keras_own_layers(model) -> bool:
    classes = [type(model), *(type(found.layer) for found in walk_layers(model))]
    return all(compat.from_keras(cls) and cls.__name__ not in RUNS_USER_CODE for cls in classes)


def forward(model, x, training: bool):
    """`model(x, training=training)`: compiled on JAX, the model's own call elsewhere."""
    if compat.backend() != "jax" or not getattr(model, "built", False):
        return model(x, training=training)
    functions = _functions(model)
    key = (training, tuple((f.layer.trainable, "call" in vars(f.layer)) for f in walk_layers(model)))
    function = functions.by_key.get(key)
    if function is _EAGER:
        return model(x, training=training)
    if function is None:
        function = functions.by_key[key] = _compile(functions, training)
    batchnorm = [found.layer for found in find_batchnorm(model)]
    functions.caller = model
    try:
        outputs, state, added_losses = function(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [float(layer.momentum) for layer in batchnorm],
            x,
        )
    finally:
        functions.caller = None
    if int(added_losses):
        functions.by_key[key] = _EAGER  # nothing assigned yet: the eager call starts from the same state
        return model(x, training=training)
    if training:
        for variable, value in zip(model.non_trainable_variables, state):
            variable.assign(value)
    return outputs


def _functions(model) -> _Functions | None:
    if not getattr(model, "built", False):
        return None
    if model not in _FUNCTIONS:
        _FUNCTIONS[model] = _Functions(_signature(model))
    return _FUNCTIONS[model]


def _signature(model) -> tuple:
    """Class, config and variable shapes, with layer names replaced by their place: two builds of
    one architecture differ in automatic names ("input_layer", "input_layer_1")."""
    names = {model.name: "#model", **{f.layer.name: f"#{i}" for i, f in enumerate(walk_layers(model))}}
    try:
        config = repr(_renamed(model.get_config(), names))
    except Exception:  # noqa: BLE001 - a model without a config shares with no other
        config = id(model)
    return type(model), config, tuple((tuple(v.shape), str(v.dtype)) for v in model.variables)


def _renamed(value, names: dict):
    if isinstance(value, dict):
        return {key: _renamed(item, names) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_renamed(item, names) for item in value]
    return names.get(value, value) if isinstance(value, str) else value


def _takes_training(model) -> bool:
    parameters = inspect.signature(model.call).parameters.values()
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _compile(functions: _Functions, training: bool):
    import jax

    def run(trainable, non_trainable, momenta, x):  # traced once per key, on the model being run
        model = functions.caller
        batchnorm = [found.layer for found in find_batchnorm(model)]
        regularized = sum(getattr(v, "regularizer", None) is not None for v in model.trainable_weights)
        momentum = [layer.momentum for layer in batchnorm]
        try:
            for layer, value in zip(batchnorm, momenta):
                object.__setattr__(layer, "momentum", value)  # a traced value: one compile for every momentum
            mode = {"training": training} if _takes_training(model) else {}  # as Keras' own JAX trainer passes it
            outputs, state, losses = model.stateless_call(trainable, non_trainable, x, return_losses=True, **mode)
        finally:
            for layer, value in zip(batchnorm, momentum):
                object.__setattr__(layer, "momentum", value)
        return outputs, state, len(losses) - regularized  # losses beyond the weights' regularizers

    return jax.jit(run)
