"""Inference-mode probes of a model on a few samples: how far apart the samples are in what
given layers receive and in the outputs, and the compiled loss.

Every probe runs `training=False` (deterministic: no dropout, no batch statistics), batch by
batch, and changes no variable.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.forward import forward


def spread(values: np.ndarray) -> float:
    """The largest difference between two samples (first axis) in any one value; 0.0 for no
    values, NaN where some are not finite."""
    flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if not np.isfinite(flat).all():
        return math.nan
    return float(np.ptp(flat, axis=0).max()) if flat.size else 0.0


def largest_spread(arrays: list) -> float:
    """The largest `spread` of several arrays; NaN where any is NaN."""
    spreads = [spread(values) for values in arrays]
    return math.nan if any(math.isnan(s) for s in spreads) else max(spreads)


def output_spread(model, x: np.ndarray, batch_size: int) -> float:
    """The `spread` of the model's outputs on `x` (the largest, for a model with several)."""
    outputs = in_batches(lambda batch: forward(model, batch, training=False), x, batch_size)
    return largest_spread(outputs) if isinstance(outputs, list) else spread(outputs)


def inference_loss(model, x: np.ndarray, y, batch_size: int) -> float:
    """The compiled loss of the model's inference-mode outputs on `x` against `y`."""
    outputs = in_batches(lambda batch: forward(model, batch, training=False), x, batch_size)
    return compat.compute_loss(model, x, y, outputs)


def inputs_of_layers_holding(model, variable_ids: frozenset, x: np.ndarray, batch_size: int) -> list | None:
    """What the model's layers (outermost first, nested models as one) that hold any of the
    variables `variable_ids` (ids of the variables) receive on `x`, one array a layer.

    None where that cannot be probed: a model with several inputs, a layer with several
    inputs, or no functional graph (a subclassed model, a layer called twice, a nested mixed
    model)."""
    keras = compat.keras()
    layers = [layer for layer in compat.sublayers(model) if any(id(v) in variable_ids for v in layer.weights)]
    try:
        tensors = [layer.input for layer in layers]
        if len(model.inputs) != 1 or any(isinstance(t, (list, tuple, dict)) for t in tensors):
            return None
        probe = keras.Model(model.inputs[0], tensors)
        outputs = in_batches(lambda batch: probe(batch, training=False), x, batch_size)
    except Exception:  # no functional graph: Keras raises one of several types
        return None
    return outputs if isinstance(outputs, list) else [outputs]


def in_batches(call: Callable, x: np.ndarray, batch_size: int):
    """`call` on `x` batch by batch, as NumPy: one array, or a list where `call` returns several."""
    parts = [call(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
    if isinstance(parts[0], (list, tuple)):
        return [np.concatenate([compat.to_numpy(p[i]) for p in parts]) for i in range(len(parts[0]))]
    return np.concatenate([compat.to_numpy(p) for p in parts])


def predicted_classes(model, outputs) -> np.ndarray | None:
    """The class each row of `outputs` names, as a model compiled without an accuracy metric is
    read: the argmax of several scores; for one score, above 0 for logits (a linear output, or a
    loss with from_logits=True), above 0.5 for probabilities. None where the outputs are not one
    score vector per sample (several outputs, a sequence, an image)."""
    from pipeline_checks.model.heads import PROBABILITY_ACTIVATIONS, output_activation
    from pipeline_checks.model.losses import loss_facts

    values = np.asarray(outputs, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] > 1:
        return values.argmax(axis=1)
    if values.ndim not in (1, 2):
        return None
    activation = output_activation(model)
    logits = loss_facts(getattr(model, "loss", None)).from_logits or (
        activation is not None and activation not in PROBABILITY_ACTIVATIONS
    )
    return (values.reshape(len(values)) > (0.0 if logits else 0.5)).astype(np.int64)


def class_accuracy(model, batches, training: bool) -> float | None:
    """The share of `batches` (a `Batches` whose targets are class labels: integers or one-hot
    rows) whose predicted class (`predicted_classes`) is its label; None where the outputs name no
    class.

    `training=True`: a training-mode pass (batch statistics) with dropout, noise and augmentation
    held in inference mode, every variable restored after, as the agreement's train-mode pass runs."""
    return outputs_accuracy(model, _pass_outputs(model, batches, training), batches)


def explained_variance(model, batches, training: bool) -> float | None:
    """R² of the outputs on `batches` (a `Batches` whose targets are values): the share of the
    targets' variance they explain, as the agreement oracle reads it (`oracle.regression.r_squared`:
    keras.metrics.R2Score's definition); None where the outputs are not one row of values for each
    target row, or the targets do not vary. The pass runs as `class_accuracy`'s does."""
    from pipeline_checks.oracle.regression import r_squared

    outputs = _pass_outputs(model, batches, training)
    if any(isinstance(o, (list, tuple, dict)) for o in outputs):
        return None
    with np.errstate(all="ignore"):
        return r_squared(batches.all_targets(), np.concatenate([compat.to_numpy(o) for o in outputs]))


def _pass_outputs(model, batches, training: bool) -> list:
    """The model's outputs on each batch, training-only layers held and every variable restored after."""
    from pipeline_checks.model.layers import training_only_layers_in_inference
    from pipeline_checks.model.state import non_trainable_state

    state = non_trainable_state(model)
    try:
        with training_only_layers_in_inference(model):
            return [forward(model, x, training=training) for x in batches.inputs]
    finally:
        state.restore()


def outputs_accuracy(model, outputs: list, batches) -> float | None:
    """The share of `batches` whose class, as `outputs` (one array per batch) name it, is its label."""
    if any(isinstance(o, (list, tuple, dict)) for o in outputs):
        return None
    scores = np.concatenate([compat.to_numpy(o) for o in outputs])
    pixels = pixel_accuracy(scores, batches.targets)
    if pixels is not None:
        return pixels
    classes = predicted_classes(model, scores)
    labels = class_labels(batches.targets)
    if classes is None or labels is None or len(labels) != len(classes):
        return None
    return float(np.mean(classes == labels))


def pixel_accuracy(scores: np.ndarray, targets) -> float | None:
    """A segmentation's accuracy: the share of pixels whose argmax class among `scores` (N, H, W,
    classes) is their mask's label (integer masks (N, H, W) or (N, H, W, 1), or one-hot
    (N, H, W, classes)); None where the outputs or targets are not per-pixel class scores and masks."""
    if scores.ndim != 4 or scores.shape[-1] < 2:
        return None
    masks = np.concatenate([np.asarray(t) for t in targets]) if isinstance(targets, (list, tuple)) else targets
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == scores.shape[-1] and masks.shape[-1] > 1:
        masks = masks.argmax(axis=-1)
    elif masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.shape != scores.shape[:-1]:
        return None
    return float(np.mean(scores.argmax(axis=-1) == masks))


def class_labels(targets) -> np.ndarray | None:
    """Integer class labels of target batches: integers as given, one-hot rows as their index;
    None for other targets (soft labels, multi-hot rows, values)."""
    labels = np.concatenate([np.asarray(t).reshape(len(t), -1) for t in targets])
    if labels.shape[1] == 1:
        return labels[:, 0]
    one_hot = np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all()
    return labels.argmax(axis=1) if one_hot else None
