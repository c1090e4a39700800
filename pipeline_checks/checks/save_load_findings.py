"""What the save_load check finds for one format: it does not save or load, or loads back other values.

Each function returns the `Finding` for one format, named by its label (".keras folder",
".keras file", "weights file"), with the likely cause read from Keras' error or from the
models, and the fix.
"""

from __future__ import annotations

import re

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.model.plain_attributes import differing_attributes
from pipeline_checks.model.saving import UNKNOWN_CLASS, first_sentence, unknown_class
from pipeline_checks.results.verdict import Finding

REGISTER_FIX = (
    "decorate the class with @keras.saving.register_keras_serializable(package=...) where it is defined, "
    "and import that module before loading; or pass custom_objects={{'{name}': {name}}} to load_model "
    "(and to this check)."
)


def loads_back(label: str) -> Finding:
    """The format loads back to identical weights and predictions: said next to a format that does not."""
    return Finding(label, "loads back to identical weights and predictions.", failure=False)


def not_saved_or_loaded(label: str, step: str, error: Exception, unregistered=()) -> Finding:
    """`model.save` or `load_model` raised `error` (`step`: "save" or "load")."""
    cause, fix = _cause_of(error, unregistered)
    return Finding(f"the {label} does not {step} ({first_sentence(error)})", cause=cause, fix=fix)


def weights_not_loaded(label: str, error: Exception) -> Finding:
    """`load_weights` raised `error` on the model `build_model` builds."""
    return Finding(
        f"the {label} does not load ({first_sentence(error)})",
        cause="build_model builds a model whose variables do not match the saved ones.",
        fix="build the same architecture in build_model as the model trained; create variables in a fixed order.",
    )


def other_architecture(label: str, difference: float, tolerance: float, weights: int, trained: int) -> Finding:
    """The loaded model's weights do not pair up with the trained model's, by count or shape."""
    parts = [f"it has {weights} weights of other shapes, the trained model {trained}"]
    if difference > tolerance:
        parts.insert(0, _predicts_differently(difference))
    return Finding(
        f"the model loaded from the {label} " + ", ".join(parts),
        cause="the loaded model's architecture differs: get_config or build_model builds other layers.",
        fix="make get_config return every argument that shapes the layer; build the same model in build_model.",
    )


def compared(
    label: str, difference: float, tolerance: float, weights: list, batchnorm: list, trained, loaded
) -> Finding:
    """The loaded model against the trained one: the paths of differing `weights` and BN layers
    (`batchnorm`), and the largest prediction `difference`. Not a failure where all agree."""
    if not (weights or batchnorm) and difference <= tolerance:
        return loads_back(label)
    parts = [_predicts_differently(difference)] if difference > tolerance else []
    if weights:
        parts.append(f"{len(weights)} weights differ")
    elif parts:
        parts[-1] += " with every weight identical"
    evidence = []
    if weights:
        evidence.append(f"Weights that differ: {listed(weights)}.")
    if batchnorm:
        evidence.append(f"BatchNormalization moving statistics that differ: {listed(batchnorm)}.")
    if weights:
        cause = "the file does not carry these values, or they are loaded into other variables (order of creation)."
        fix = "create every variable in build() or __init__ in a fixed order, and save after after_fit."
    else:
        cause, fix = _state_outside_weights(trained, loaded)
    return Finding(f"the model loaded from the {label} " + ", ".join(parts), " ".join(evidence), fix=fix, cause=cause)


def _predicts_differently(difference: float) -> str:
    return f"predicts differently (largest difference {difference:.3g})"


def _cause_of(error: Exception, unregistered=()) -> tuple[str, str]:
    message = str(error)
    if re.search(UNKNOWN_CLASS, message) or "register_keras_serializable" in message or unregistered:
        name = unknown_class(message) or f"'{unregistered[0]}'"
        return (
            f"the custom class {name} is not registered as serializable, so load_model cannot find it.",
            REGISTER_FIX.format(name=name.strip("'") or "MyLayer"),
        )
    if "Lambda" in message or "safe_mode" in message:
        return (
            "a Lambda layer holds Python bytecode, which load_model(safe_mode=True) refuses to run.",
            "replace the Lambda with a small custom layer, "
            "registered with @keras.saving.register_keras_serializable().",
        )
    if isinstance(error, NotImplementedError) and "get_config" in message:
        return (
            "a custom layer takes constructor arguments but does not override get_config.",
            "override get_config() to return every constructor argument "
            "(and from_config if they are not plain values).",
        )
    return (
        f"{type(error).__name__} while rebuilding the model from its config: a get_config/from_config pair that "
        "does not round-trip.",
        "make get_config return every constructor argument as plain values; "
        "check keras.layers.deserialize(keras.layers.serialize(layer)) per custom layer.",
    )


def _state_outside_weights(trained, loaded) -> tuple[str, str]:
    """Every weight matches, predictions do not: the attribute the files did not carry."""
    found = differing_attributes(trained, loaded)
    if not found:
        return (
            "every weight matches, so some state lives outside Keras variables and configs: a layer whose call "
            "reads globals or plain attributes, or random ops at inference.",
            "keep state in variables (self.add_weight(..., trainable=False)) "
            "and every constructor argument in get_config().",
        )
    first = found[0]
    attribute, cls = first.attribute, type(first.found.layer).__name__
    where = (
        f"layer {first.found.path} ({cls}) has {attribute}={_short(first.first)} in the trained model "
        f"but {_short(first.second)} after loading"
    )
    if first.constructor_argument and not first.in_config:
        return (
            f"{where}: its get_config() omits '{attribute}', so loading builds it with the default.",
            f"return it from {cls}.get_config(): {{**super().get_config(), '{attribute}': self.{attribute}}}.",
        )
    return (
        f"{where}: '{attribute}' is a plain attribute, not in a Keras variable, so no file carries it.",
        f"create it in {cls}.__init__/build with self.add_weight(..., trainable=False) and assign to it "
        "(e.g. in adapt()); or, if it is a constructor argument, return it from get_config().",
    )


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, threshold=6)
    return repr(value)
