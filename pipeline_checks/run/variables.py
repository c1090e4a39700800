"""What each variable of a training run is (trained or frozen weight, statistic), and how far it moved.

Which variables count: a layer's weights are the variables it created trainable (kernel,
bias, gamma, beta), whether or not it is frozen now; its statistics are the variables it
created non-trainable (BatchNormalization moving mean and variance, or any layer's own
running statistics). Random-generator states, optimizer and metric variables are neither.
A layer is frozen when fit was not to train its weights (they are missing from the model's
`trainable_weights` when the run starts), or when it has no weights and `trainable=False`.
A run in stages (`TrainingRun.stages`) trains the weights trainable in any stage; each stage
has its own frozen set (`variable_roles(run, stage.trainable)`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.layers import walk_layers
from pipeline_checks.run.training import TrainingRun

TRAINED, FROZEN, STATISTIC, FROZEN_STATISTIC = "trained", "frozen", "statistic", "frozen statistic"


@dataclass(frozen=True)
class VariableRole:
    """What one of the run's variables is: a trained or frozen weight, or a statistic.

    Attributes:
        index: its position in `run.weights` (and in the run's snapshots).
        path: the owning layer's path and the variable's name, e.g. "base/conv2d/kernel".
        layer: the owning layer's path, e.g. "base/conv2d".
        layer_class: the owning layer's class name, e.g. "BatchNormalization".
        kind: TRAINED, FROZEN, STATISTIC (of a layer that is not frozen) or FROZEN_STATISTIC.
    """

    index: int
    path: str
    layer: str
    layer_class: str
    kind: str

    @property
    def batchnorm(self) -> bool:
        name = self.layer_class.lower()
        return "batchnorm" in name or "batch_norm" in name or self.path.endswith(("moving_mean", "moving_variance"))


def variable_roles(run: TrainingRun, trainable: frozenset | None = None) -> list[VariableRole]:
    """The role of each of the run's variables that is a weight or a statistic, in `run.weights` order.

    `trainable`: ids of the weights trained (one stage's); default `run.trainable`, every stage's.
    A layer without weights counts as frozen by its `trainable` flag now.
    """
    trainable = run.trainable if trainable is None else trainable
    owners = {}  # id(variable) -> (layer path, layer, created trainable)
    for path, layer in [(run.model.name, run.model), *((f.path, f.layer) for f in walk_layers(run.model))]:
        created_trainable, created_non_trainable = _own_variables(layer)
        for variable in created_trainable:
            owners.setdefault(id(variable), (path, layer, True))
        for variable in created_non_trainable:
            owners.setdefault(id(variable), (path, layer, False))
    frozen_layers = {id(layer) for _, layer, weight in owners.values() if weight and not _is_trained(trainable, layer)}
    roles = []
    for index, variable in enumerate(run.weights):
        name = compat.variable_path(variable)
        if id(variable) not in owners or "seed_generator" in name:
            continue
        path, layer, weight = owners[id(variable)]
        frozen = id(layer) in frozen_layers or (not _own_variables(layer)[0] and not layer.trainable)
        if weight:
            kind = FROZEN if id(variable) not in trainable else TRAINED
        else:
            kind = FROZEN_STATISTIC if frozen else STATISTIC
        short = name.rsplit("/", 1)[-1].split(":")[0]
        roles.append(VariableRole(index, f"{path}/{short}", path, type(layer).__name__, kind))
    return roles


def change(role: VariableRole, before: tuple, after: tuple) -> float:
    """How far a variable moved between two snapshots: the largest absolute change, 0 if none.

    NaN where it became (or stopped being) non-finite: that counts as moved.
    """
    a, b = before[role.index], after[role.index]
    if np.array_equal(a, b, equal_nan=True):
        return 0.0
    with np.errstate(all="ignore"):
        difference = np.abs(b.astype(np.float64) - a.astype(np.float64))
    return float(np.nanmax(difference)) if np.isfinite(difference).any() else float("nan")


def _is_trained(trainable: frozenset, layer) -> bool:
    """Whether fit was to train the weights `layer` created (all of them in trainable_weights)."""
    return all(id(v) in trainable for v in _own_variables(layer)[0])


def _own_variables(layer) -> tuple[list, list]:
    """The variables `layer` itself created, (created trainable, created non-trainable),
    sublayers' excluded; freezing does not move them between the two (Keras 2 and 3)."""
    for trainable, non_trainable in (
        ("_trainable_variables", "_non_trainable_variables"),  # Keras 3
        ("_trainable_weights", "_non_trainable_weights"),  # Keras 2 (tf_keras)
    ):
        if hasattr(layer, trainable) and hasattr(layer, non_trainable):
            return list(getattr(layer, trainable)), list(getattr(layer, non_trainable))
    return [], []


def current_learning_rate(model) -> float | None:
    """The optimizer's learning rate now (a schedule's current value); None if it cannot be read."""
    rate = getattr(getattr(model, "optimizer", None), "learning_rate", None)
    if rate is None:
        return None
    try:
        return float(compat.to_numpy(rate))
    except (TypeError, ValueError):
        return None
