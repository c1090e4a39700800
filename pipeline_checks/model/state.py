"""Capture a model's variables and put them back bit for bit.

A training-mode forward pass updates BatchNormalization moving statistics (and
random-generator states); checks capture the state before and restore it after, so
nothing of the user's changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.forward import forward


@dataclass(frozen=True)
class VariableSnapshot:
    """Values of some variables at one moment."""

    variables: tuple
    values: tuple

    @classmethod
    def of(cls, variables, like: Mapping[int, np.ndarray] | None = None) -> VariableSnapshot:
        """The variables' values now.

        `like`: earlier arrays by `id(variable)`, kept where the bytes are the same (as in
        `weight_values`). A zero array of a MiB or more (an optimizer slot before the first
        step) is held as one zero broadcast to its shape.
        """
        variables, like = tuple(variables), like or {}
        return cls(variables, tuple(_held_once(compat.to_numpy(v), like.get(id(v))) for v in variables))

    def restore(self) -> None:
        for variable, value in zip(self.variables, self.values):
            variable.assign(value if value.flags.c_contiguous else np.array(value))  # a broadcast zero: an array again

    def changed(self) -> list:
        """The variables whose value differs from the snapshot now (bitwise)."""
        return [
            v for v, old in zip(self.variables, self.values) if compat.to_numpy(v).tobytes() != old.tobytes()
        ]


def weight_values(weights, *like: tuple | None) -> tuple:
    """A NumPy copy of each weight, for a run's snapshots (initial, after the first step, final).

    `like`: earlier snapshots of the same weights (entries may be None), in order of preference.
    Where one holds a weight's bytes, its array is kept instead of a new copy: a frozen weight,
    a one-step epoch's weights after its first step and after the epoch, or a replay that
    reproduces its run, are then held once, not once per snapshot. Snapshots are read, never
    written, so sharing an array between them is safe: a value is only ever shared with an
    array of the same bytes.
    """
    candidates = [snapshot for snapshot in like if snapshot is not None and len(snapshot) == len(weights)]
    return tuple(_same_or_new(compat.to_numpy(v), *(c[i] for c in candidates)) for i, v in enumerate(weights))


def _same_or_new(new: np.ndarray, *olds: np.ndarray | None) -> np.ndarray:
    """The first of `olds` with `new`'s shape, dtype and bytes; else `new`."""
    for old in olds:
        if old is not None and new.shape == old.shape and new.dtype == old.dtype and new.tobytes() == old.tobytes():
            return old
    return new


ZEROS_BROADCAST_FROM = 1 << 20  # bytes: smaller zero arrays are not worth a view


def _held_once(new: np.ndarray, old: np.ndarray | None) -> np.ndarray:
    """`old` where it holds `new`'s bytes; a read-only broadcast zero where `new` is all zero bytes; else `new`."""
    kept = _same_or_new(new, old)
    if kept is new and new.nbytes >= ZEROS_BROADCAST_FROM and not new.reshape(-1).view(np.uint8).any():
        return np.broadcast_to(np.zeros((), new.dtype), new.shape)
    return kept


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
