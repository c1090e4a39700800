"""Forward passes over a compiled model and the compiled loss and metrics of their outputs.

Each pass is Keras' own: `model(x, training=True)` batch by batch (state restored after),
`model.predict`, `model.evaluate`. The oracle compares them; the training run and the
labels check read the loss of a training-mode pass before the first step.
"""

from __future__ import annotations

import contextlib

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.batches import Batches, collect_batches
from pipeline_checks.model.forward import forward
from pipeline_checks.model.layers import find_batchnorm, training_only_layers_in_inference
from pipeline_checks.model.state import non_trainable_state


def train_mode_metrics(model, batches: Batches, batchnorm_only: bool = False) -> tuple[dict[str, float], set[int]]:
    """Metrics of a training-mode forward pass, batch by batch; every variable restored after.

    Args:
        batchnorm_only: keep dropout, noise, stochastic depth and augmentation layers in
            inference mode, so that the pass differs from inference in BatchNormalization alone.

    Returns:
        The metrics, and the ids of the BatchNormalization layers whose moving mean the pass moved.
    """
    state = non_trainable_state(model)
    found = find_batchnorm(model)
    means_before = [compat.to_numpy(f.layer.moving_mean) for f in found]
    only_batchnorm = training_only_layers_in_inference(model) if batchnorm_only else contextlib.nullcontext()
    try:
        with only_batchnorm:
            outputs = [compat.outputs_to_numpy(forward(model, x, training=True)) for x in batches.inputs]
        moved = {
            id(f.layer)
            for f, before in zip(found, means_before)
            if not np.array_equal(compat.to_numpy(f.layer.moving_mean), before)
        }
    finally:
        state.restore()
    return metrics_of_outputs(model, batches, outputs), moved


def predict_outputs(model, batches: Batches) -> list[np.ndarray]:
    """`model.predict` on every batch at once, split back into the batches."""
    outputs = model.predict(batches.all_inputs(), batch_size=max(batches.sizes), verbose=0)
    return np.split(np.asarray(outputs), np.cumsum(batches.sizes)[:-1])


def evaluate_metrics(model, batches: Batches) -> dict[str, float]:
    """`model.evaluate` on every batch at once, as a dict of floats."""
    results = model.evaluate(
        batches.all_inputs(), batches.all_targets(), batch_size=max(batches.sizes), verbose=0, return_dict=True
    )
    return {name: float(value) for name, value in results.items()}


def metrics_of_outputs(model, batches: Batches, outputs) -> dict[str, float]:
    """The compiled loss and metrics of given outputs, weighted by batch size as evaluate does."""
    model.reset_metrics()
    loss, results = 0.0, {}
    for x, y, y_pred in zip(batches.inputs, batches.targets, outputs):
        loss += compat.compute_loss(model, x, y, y_pred) * len(x)
        results = compat.update_compiled_metrics(model, x, y, y_pred)
    results = {name: value for name, value in results.items() if name != "loss"}
    return {"loss": loss / batches.total, **results}


def initial_loss(model, x, y, batch_size: int) -> float:
    """The loss of a training-mode pass before any step, as the first step sees it."""
    return float(initial_metrics(model, x, y, batch_size)["loss"])


def initial_metrics(model, x, y, batch_size: int) -> dict[str, float]:
    """The loss and metrics of a training-mode pass before any step (each output's loss, for several)."""
    batches = collect_batches((x, y), batch_size, need_targets=True, shuffle=True)
    metrics, _ = train_mode_metrics(model, batches)
    model.reset_metrics()
    return metrics


def sample_count_metrics(model) -> dict[str, bool]:
    """The compiled metrics that count samples (keras.metrics.TruePositives, FalseNegatives, ...: Keras'
    confusion-matrix condition counts), in Keras 2 and 3 alike: name -> whether more is better (true
    positives and negatives) or worse (false ones)."""
    found, stack = {}, list(getattr(model, "metrics", ()))
    while stack:
        metric = stack.pop()
        if any(base.__name__ == "_ConfusionMatrixConditionCount" for base in type(metric).__mro__):
            found[metric.name] = not type(metric).__name__.startswith("False")
        elif metric is not model and hasattr(metric, "metrics"):  # Keras 3's CompileMetrics holds them
            stack.extend(metric.metrics)
    return found
