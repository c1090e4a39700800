"""Capture a model's variables and put them back bit for bit.

A training-mode forward pass updates BatchNormalization moving statistics (and
random-generator states); checks capture the state before and restore it after, so
nothing of the user's changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_checks.model import compat
from pipeline_checks.model.forward import forward


@dataclass(frozen=True)
class VariableSnapshot:
    """Values of some variables at one moment."""

    variables: tuple
    values: tuple

    @classmethod
    def of(cls, variables) -> VariableSnapshot:
        variables = tuple(variables)
        return cls(variables, tuple(compat.to_numpy(v) for v in variables))

    def restore(self) -> None:
        for variable, value in zip(self.variables, self.values):
            variable.assign(value)

    def changed(self) -> list:
        """The variables whose value differs from the snapshot now (bitwise)."""
        return [
            v for v, old in zip(self.variables, self.values) if compat.to_numpy(v).tobytes() != old.tobytes()
        ]


def weight_values(weights, like: tuple | None = None) -> tuple:
    """A NumPy copy of each weight, for a run's snapshots (initial, after the first step, final).

    Where `like`, an earlier snapshot of the same weights, holds the same bytes, its array is
    kept instead: a frozen weight, or a one-step epoch's weights after its first step and
    after the epoch, are then held once, not once per snapshot. Snapshots are read, never
    written, so sharing an array between them is safe.
    """
    if like is None or len(like) != len(weights):
        return tuple(compat.to_numpy(v) for v in weights)
    return tuple(_same_or_new(compat.to_numpy(v), old) for v, old in zip(weights, like))


def _same_or_new(new, old):
    same = new.shape == old.shape and new.dtype == old.dtype and new.tobytes() == old.tobytes()
    return old if same else new


def non_trainable_state(model) -> VariableSnapshot:
    """Everything a forward pass may change: non-trainable variables (BN statistics, RNG state)."""
    return VariableSnapshot.of([*model.non_trainable_variables, *compat.metric_variables(model)])


def train_mode_outputs(model, inputs):
    """The outputs of a training-mode forward pass, as numpy, with everything it moved put back."""
    state = non_trainable_state(model)
    try:
        return compat.to_numpy(forward(model, inputs, training=True))
    finally:
        state.restore()
