"""The gradients of a trained model's compiled loss at its initial weights, and when a first step shows them.

A Keras optimizer's update carries a NaN or Inf gradient into the weight it updates (SGD,
Adam, clipnorm and weight decay all do), so finite weights after fit's first step mean
finite gradients at the initial weights: computing them again (a compile of the backward
pass on JAX, seconds for an application) would find nothing. Not so where the step is not
Keras' own, where `clipvalue` turns Inf into a finite value, or where a loss-scale optimizer
skips a non-finite step by design.
"""

from __future__ import annotations

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.gradients import loss_gradients, supports_gradients


def first_step_shows_gradients(model, after_first_step) -> str:
    """Why the weights after fit's first step prove its gradients finite, or "" where they do not.

    Args:
        model: the model fit trained, with its optimizer.
        after_first_step: the values of the model's variables after fit's first step, or None.
    """
    optimizer = getattr(model, "optimizer", None)
    if after_first_step is None or optimizer is None:
        return ""
    if not compat.from_keras(type(model).train_step) or "LossScale" in type(optimizer).__name__:
        return ""
    if getattr(optimizer, "clipvalue", None) is not None:
        return ""
    if not all(np.isfinite(value).all() for value in after_first_step):
        return ""
    return "fit's first step updated every weight to a finite value, so it computed no NaN or Inf gradient"


def initial_gradients(model, variables, initial, x, y, batch_size: int) -> tuple[list | None, str]:
    """Gradients of the compiled loss on the first shuffled batch of `(x, y)` with `variables` at `initial`.

    The model is put back to its initial weights for the computation, then restored bit for
    bit: no second build (an application model takes seconds to build).

    Args:
        model: the compiled model.
        variables: its variables, aligned with `initial`.
        initial: their values before training.
        x, y: the training inputs and targets.
        batch_size: the batch size fit used.

    Returns:
        (path, gradient or None) pairs for the trainable weights and "", or None and why the
        gradients were skipped (a backend without gradients).
    """
    from pipeline_checks.model.batches import collect_batches
    from pipeline_checks.model.state import VariableSnapshot

    if not supports_gradients():
        return None, f"computing gradients is not supported on the {compat.backend()} backend"
    batches = collect_batches((x, y), batch_size, need_targets=True, shuffle=True)
    every = {id(v): v for v in [*model.weights, *getattr(model, "variables", []), *compat.metric_variables(model)]}
    state = VariableSnapshot.of(every.values())
    try:
        for variable, value in zip(variables, initial):
            variable.assign(value)
        trainable = list(model.trainable_weights)
        gradients = loss_gradients(model, batches.inputs[0], batches.targets[0], trainable)
    finally:
        state.restore()
    return [(compat.variable_path(v), g) for v, g in zip(trainable, gradients)], ""
