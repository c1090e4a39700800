"""Keras random layers that a user's function reaches but does not build: their state outlives a run.

keras.io's augmentation pattern builds `RandomFlip`, `RandomRotation`, ... once, at module level,
and maps them over a `tf.data` dataset. Each layer's seed generator is seeded when the layer is
made and advances with every call, so a second run in the same process draws other numbers
whatever `keras.utils.set_random_seed` says: only a fresh process repeats the first. The checks
train a pipeline several times in one process, so each run starts these layers from the state
the first run found them in (`restart_outside_layers`), as a fresh process would start them.
Layers built inside the function are made anew, from the seed, on every run.
"""

from __future__ import annotations

import functools
import types
import weakref
from collections.abc import Callable

DEPTH = 4  # functions reached through functions (a map's lambda inside the dataset function, ...)
ITEMS = 100  # members of a list, tuple or dict looked into


# Each outside layer's variable values (its seed generator's state) when a run first met it.
_FIRST_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def random_layers_reached_by(function: Callable) -> list[str]:
    """The Keras layers that draw random numbers (augmentation, noise, dropout) which `function`
    reaches through its globals, closure or defaults, or through a model or list it reaches,
    e.g. ["RandomFlip 'random_flip' (data_augmentation)"]; [] where it reaches none."""
    return [described for _, described in _reached(function)]


def restart_outside_layers(functions) -> list[str]:
    """Put the random layers that `functions` reach back to the state the first run met them in.

    Returns the layers restarted, described as `random_layers_reached_by` describes them. A
    layer whose state is no Keras variable (Keras 2's random generators) is left as it is.
    """
    restarted = []
    for function in functions:
        if function is None:
            continue
        for layer, described in _reached(function):
            variables = list(getattr(layer, "variables", ()))
            if not variables:
                continue
            try:
                first = _FIRST_STATE[layer]
            except KeyError:
                _FIRST_STATE[layer] = [v.numpy().copy() for v in variables]
            else:
                for variable, value in zip(variables, first):
                    variable.assign(value)
            restarted.append(described)
    return restarted


def _reached(function: Callable) -> list[tuple]:
    found: dict[int, tuple] = {}
    _visit_function(function, found, set(), DEPTH)
    return list(found.values())


def _visit_function(function, found: dict, seen: set, depth: int) -> None:
    function = getattr(function, "__func__", function)  # a bound method
    if id(function) in seen or depth < 0:
        return
    seen.add(id(function))
    if isinstance(function, functools.partial):
        for value in (function.func, *function.args, *function.keywords.values()):
            _visit(value, "a partial's argument", found, seen, depth)
        return
    code = getattr(function, "__code__", None)
    if code is None:
        return
    scope = getattr(function, "__globals__", {})
    for name in _names(code):
        if name in scope:
            _visit(scope[name], name, found, seen, depth)
    for name, cell in zip(code.co_freevars, function.__closure__ or ()):
        try:
            _visit(cell.cell_contents, name, found, seen, depth)
        except ValueError:  # an empty cell
            continue
    for value in getattr(function, "__defaults__", None) or ():
        _visit(value, "a default argument", found, seen, depth)


def _visit(value, name: str, found: dict, seen: set, depth: int) -> None:
    from pipeline_checks.model import compat

    if isinstance(value, (types.FunctionType, types.MethodType)) or isinstance(value, functools.partial):
        _visit_function(value, found, seen, depth - 1)
    elif _is_layer(value):
        for layer in _layers_within(value):
            if compat.draws_random_numbers(layer) and id(layer) not in found:
                found[id(layer)] = (layer, f"{type(layer).__name__} {layer.name!r} ({name})")
    elif isinstance(value, (list, tuple)) and id(value) not in seen:
        seen.add(id(value))
        for item in value[:ITEMS]:
            _visit(item, name, found, seen, depth)
    elif isinstance(value, dict) and id(value) not in seen:
        seen.add(id(value))
        for item in list(value.values())[:ITEMS]:
            _visit(item, name, found, seen, depth)


def _names(code) -> list[str]:
    """The global names `code` and the functions defined inside it (a lambda) read."""
    names = list(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names += _names(constant)
    return names


def _is_layer(value) -> bool:
    """A Keras layer or model (its attributes are not touched: an unbuilt Keras 2 model raises on some)."""
    return any(cls.__name__ == "Layer" and "keras" in cls.__module__ for cls in type(value).__mro__)


def _layers_within(layer) -> list:
    from pipeline_checks.model import compat

    layers, pending = [], [layer]
    while pending:
        current = pending.pop()
        layers.append(current)
        pending.extend(compat.sublayers(current))
    return layers
