"""Compile arguments a Keras 2 program passes that Keras 3 reads as other ones."""

from __future__ import annotations

import functools
from collections.abc import Callable

from pipeline_checks.model import compat


def compile_mistake(model) -> str | None:
    """What a model's compile arguments show of a Keras 2 call read by Keras 3, where they show one.

    Keras 2 reads `compile(optimizer, loss, metrics, loss_weights)`, Keras 3
    `compile(optimizer, loss, loss_weights, metrics)`: a Keras 2 program that passes its metrics by
    position compiles without an error on Keras 3, with the metrics as loss weights, and Keras
    raises only when it multiplies a loss by one ("dtype='string' is not a valid dtype for Keras
    type promotion"), a message that names neither argument.
    """
    if not compat.is_keras3():
        return None
    config = getattr(getattr(model, "_compile_config", None), "config", None)  # the arguments as given
    weights = (config or {}).get("loss_weights")
    values = list(weights.values()) if isinstance(weights, dict) else weights
    if not isinstance(values, (list, tuple)):
        values = [values]
    if not any(isinstance(v, str) or callable(v) or hasattr(v, "update_state") for v in values):
        return None
    return (
        "compile's third positional argument is loss_weights in Keras 3 (it was metrics in Keras 2), and the model "
        f"was compiled with loss_weights={weights!r}: pass the metrics by keyword, "
        f"compile(optimizer, loss, metrics={weights!r})"
    )


def compile_mistake_of(model) -> Callable[[], str | None]:
    """`compile_mistake` of `model`, to call when the model raises (`errors.pipeline_step`'s likely cause)."""
    return functools.partial(compile_mistake, model)
