"""Precise BatchNorm: moving statistics recomputed from data, undoably.

Every BatchNormalization layer's moving mean and variance become the average of the
per-batch statistics that training mode computes over the calibration data (weighted by
batch size; with one batch, exactly that batch's statistics), not an exponential moving
average. The trick: before batch i the layer's momentum is set to 1 - n_i / (n_1 + ... + n_i),
so Keras' own update `moving = moving * momentum + batch * (1 - momentum)` accumulates
the running average in one training-mode forward pass per batch, and nothing else runs.

Dropout, noise, stochastic depth and augmentation layers are held in inference mode during
those passes: the statistics are those of the activations inference will normalize (active
dropout shifts the variance BatchNorm would learn, the "variance shift" between the two).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline_checks.batchnorm.statistics import drift, moving_statistics
from pipeline_checks.model.batches import collect_batches
from pipeline_checks.model.forward import forward
from pipeline_checks.model.layers import find_batchnorm, training_only_layers_in_inference
from pipeline_checks.model.state import VariableSnapshot


@dataclass(frozen=True)
class LayerRecalibration:
    """One BatchNormalization layer's moving statistics before and after."""

    path: str
    layer: Any = field(repr=False)
    momentum: float
    before_mean: np.ndarray = field(repr=False)
    before_variance: np.ndarray = field(repr=False)
    after_mean: np.ndarray = field(repr=False)
    after_variance: np.ndarray = field(repr=False)

    @property
    def drift(self) -> float:
        """How far the old moving statistics were from the data's (see `batchnorm.drift`)."""
        return drift(self.before_mean, self.before_variance, self.after_mean, self.after_variance, self.layer.epsilon)


@dataclass
class Recalibration:
    """What `recalibrate_batchnorm` changed; `restore()` (or leaving a `with` block) undoes it.

    Attributes:
        layers: the recalibrated layers, with statistics before and after.
        frozen: paths of `trainable=False` BN layers left alone.
        samples, batches: how much calibration data was used.
        note: a sentence for the case where nothing was changed.
    """

    layers: list[LayerRecalibration]
    frozen: list[str]
    samples: int
    batches: int
    note: str = ""
    restored: bool = False

    def restore(self) -> None:
        """Put every changed layer's moving statistics back, bit for bit."""
        for change in self.layers:
            change.layer.moving_mean.assign(change.before_mean)
            change.layer.moving_variance.assign(change.before_variance)
        self.restored = True

    def largest_drift(self, count: int = 3) -> list[LayerRecalibration]:
        return sorted(self.layers, key=lambda change: change.drift, reverse=True)[:count]

    def __enter__(self) -> Recalibration:
        return self

    def __exit__(self, *exc_info) -> None:
        self.restore()

    def __str__(self) -> str:
        if not self.layers:
            return self.note
        lines = [
            f"Recalibrated {len(self.layers)} BatchNormalization layers on {self.samples} samples "
            f"in {self.batches} batches"
            + (f"; left {len(self.frozen)} frozen layers alone" if self.frozen else "")
            + ".",
            "Largest drift between old moving statistics and the data's:",
        ]
        lines += [f"  {c.path}: {c.drift:.3g}" for c in self.largest_drift()]
        return "\n".join(lines)


def recalibrate_batchnorm(
    model, data, batch_size: int | None = None, include_frozen: bool = False, shuffle: bool = True
) -> Recalibration:
    """Set every BatchNormalization layer's moving statistics from data (precise BN).

    The statistics come from training-mode passes with dropout, noise, stochastic depth and
    augmentation layers held in inference mode, as inference will run them. Only moving
    means and variances change: weights, optimizer state, layer
    configuration and momentum are left bit-identical, also when it fails midway.

    Args:
        model: a Keras model; BN layers inside nested models are found too.
        data: model inputs (already preprocessed): an array, `(x, y)`, or an iterable
            of batches such as a `tf.data.Dataset`. Targets are ignored.
        batch_size: batch size for arrays (default 32); use the training batch size, since
            batch statistics depend on it. `len(x)` calibrates on all data as one batch.
        include_frozen: also recalibrate `trainable=False` BN layers (left alone by default,
            since they run in inference mode while training and are listed in `.frozen`).
        shuffle: batch arrays in a fixed shuffled order, as `fit` does (data sorted by
            class would otherwise give one-class batches); iterables keep their order.

    Returns:
        A `Recalibration`; call `.restore()`, or use it as a context manager, to undo.

    Example:
        >>> with recalibrate_batchnorm(model, x, batch_size=len(x)) as change:
        ...     model.evaluate(x, y)      # with statistics from the data
        >>> # on leaving the block the old statistics are back
    """
    batches = collect_batches(data, batch_size, shuffle=shuffle)
    found = find_batchnorm(model)
    if not found:
        note = f"{model.name} has no BatchNormalization layers; nothing to recalibrate."
        return Recalibration([], [], batches.total, len(batches.inputs), note=note)
    targets = [f for f in found if include_frozen or f.layer.trainable]
    frozen = [f.path for f in found if f not in targets]
    statistics = VariableSnapshot.of(v for f in targets for v in (f.layer.moving_mean, f.layer.moving_variance))
    # Everything else a training-mode pass may touch (RNG states, frozen BN run by custom code).
    statistic_ids = {id(v) for v in statistics.variables}
    others = VariableSnapshot.of(v for v in model.non_trainable_variables if id(v) not in statistic_ids)
    settings = [(f.layer, f.layer.momentum, f.layer.trainable, getattr(f.layer, "fused", None)) for f in targets]
    try:
        for found_layer in targets:
            if not found_layer.layer.trainable:
                found_layer.layer.trainable = True  # include_frozen: let training mode update it.
            if getattr(found_layer.layer, "fused", None):
                # Keras 2's fused kernel averages the Bessel-corrected batch variance, which training
                # mode does not normalize with; its unfused path averages the biased one, as Keras 3 does.
                found_layer.layer.fused = False
        if not all(np.isfinite(value).all() for value in statistics.values):
            # Momentum 0 below gives exactly the first batch's statistics, unless the old ones are NaN.
            for variable in statistics.variables:
                variable.assign(np.zeros(variable.shape, "float32"))
        seen = 0
        with training_only_layers_in_inference(model):
            for inputs in batches.inputs:
                seen += len(inputs)
                for found_layer in targets:
                    found_layer.layer.momentum = 1.0 - len(inputs) / seen
                forward(model, inputs, training=True)
    except BaseException:
        statistics.restore()
        others.restore()
        raise
    finally:
        for layer, momentum, trainable, fused in settings:
            layer.momentum = momentum
            if layer.trainable != trainable:
                layer.trainable = trainable
            if fused is not None:
                layer.fused = fused
    others.restore()
    values = iter(statistics.values)
    changes = [
        LayerRecalibration(f.path, f.layer, f.layer.momentum, next(values), next(values), *moving_statistics(f.layer))
        for f in targets
    ]
    return Recalibration(changes, frozen, batches.total, len(batches.inputs))
