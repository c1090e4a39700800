"""How much of a run's model trains (by parameter count), how far fit moved the trained
weights, and what moving them did to the loss.

Parameters are the weights' values (kernels, biases, BatchNormalization's gamma and beta);
statistics (moving mean and variance) are not weights and count on neither side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.model.probes import inference_loss
from pipeline_checks.model.state import VariableSnapshot
from pipeline_checks.run.training import TrainingRun
from pipeline_checks.run.variables import FROZEN, TRAINED, change, variable_roles


@dataclass(frozen=True)
class Capacity:
    """How much of the model trains, and how far fit moved the trained weights.

    Attributes:
        trained: parameters in the weights fit trained.
        frozen: parameters in the frozen weights.
        indices: the trained weights' positions in `run.weights` (and in its snapshots).
        moved: how many trained weights changed at all.
        step: how far the trained weights moved together (root of the summed squared change),
            relative to their size at initialization; inf where that size is 0.
        frozen_layers: the outermost layers holding frozen weights, e.g. ("conv_base",).
    """

    trained: int
    frozen: int
    indices: tuple
    moved: int
    step: float
    frozen_layers: tuple

    @property
    def weights(self) -> int:
        """How many weights (variables) train."""
        return len(self.indices)

    @property
    def share(self) -> float:
        """The trained parameters' share of all parameters; 0.0 for a model without any."""
        total = self.trained + self.frozen
        return self.trained / total if total else 0.0

    def describe(self) -> str:
        total = self.trained + self.frozen
        text = f"{self.share:.1%} of the model's weights train ({self.trained:,} of {total:,} parameters)"
        return f"{text}; frozen: {listed(self.frozen_layers)}" if self.frozen_layers else text


def capacity_of(run: TrainingRun) -> Capacity:
    """The run's `Capacity`, from its weights at initialization and after fit."""
    roles = variable_roles(run)
    trained = [r for r in roles if r.kind == TRAINED]
    frozen = [r for r in roles if r.kind == FROZEN]
    with np.errstate(all="ignore"):
        moved = sum(_squared(run.final[r.index] - run.initial[r.index]) for r in trained)
        size = sum(_squared(run.initial[r.index]) for r in trained)
    return Capacity(
        trained=sum(run.initial[r.index].size for r in trained),
        frozen=sum(run.initial[r.index].size for r in frozen),
        indices=tuple(r.index for r in trained),
        moved=sum(change(r, run.initial, run.final) != 0.0 for r in trained),
        step=math.sqrt(moved / size) if size > 0 else math.inf,
        frozen_layers=tuple(dict.fromkeys(r.layer.split("/")[0] for r in frozen)),
    )


def loss_before_and_after(run: TrainingRun, capacity: Capacity) -> tuple[float, float]:
    """The compiled loss on the training images in inference mode, with the trained weights as
    fit found them and as it left them; every weight is as it was when this returns.

    Only the trained weights go back: statistics stay as they are now (recalibrated by
    `after_fit`, say), so the two losses differ by what training the weights did."""
    trained = [run.weights[index] for index in capacity.indices]
    after = inference_loss(run.model, run.x_infer, run.y_train, run.pipeline.batch_size)
    now = VariableSnapshot.of(trained)
    try:
        for variable, index in zip(trained, capacity.indices):
            variable.assign(run.initial[index])
        before = inference_loss(run.model, run.x_infer, run.y_train, run.pipeline.batch_size)
    finally:
        now.restore()
    return before, after


def _squared(values: np.ndarray) -> float:
    return float(np.sum(np.square(values, dtype=np.float64)))
