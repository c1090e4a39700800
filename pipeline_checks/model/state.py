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
from pipeline_checks.model.on_disk import OnDisk, SpillFile


@dataclass(frozen=True)
class VariableSnapshot:
    """Values of some variables at one moment."""

    variables: tuple
    values: tuple

    @classmethod
    def of(cls, variables, like: Mapping[int, np.ndarray] | None = None, on_disk: bool = False) -> VariableSnapshot:
        """The variables' values now.

        `like`: earlier arrays by `id(variable)`, kept where the bytes are the same (as in
        `weight_values`). A zero array of a MiB or more (an optimizer slot before the first
        step) is held as one zero broadcast to its shape. `on_disk`: every other value of a MiB
        or more goes to a temporary file (`on_disk.SpillFile`) until it is read back.
        """
        variables, like = tuple(variables), like or {}
        spill = SpillFile() if on_disk else None
        values = []
        for variable in variables:
            old = like.get(id(variable))
            value = _held_once(compat.to_numpy(variable), old)
            if spill is not None and value is not old and value.flags.c_contiguous and value.nbytes >= LARGE:
                value = spill.write(value)
            values.append(value)
        return cls(variables, tuple(values))

    def restore(self) -> None:
        for variable, value in zip(self.variables, self.values):
            variable.assign(_array(value))

    def changed(self) -> list:
        """The variables whose value differs from the snapshot now (bitwise)."""
        return [
            v for v, old in zip(self.variables, self.values) if compat.to_numpy(v).tobytes() != _array(old).tobytes()
        ]


def _array(value) -> np.ndarray:
    """A snapshot's value as a contiguous array: read back from disk, or a broadcast zero made whole."""
    if isinstance(value, OnDisk):
        return value.array()
    return value if value.flags.c_contiguous else np.array(value)


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


LARGE = 1 << 20  # bytes: a value held as a broadcast zero or on disk; smaller ones are not worth a view or a write


def _held_once(new: np.ndarray, old: np.ndarray | None) -> np.ndarray:
    """`old` where it holds `new`'s bytes; a read-only broadcast zero where `new` is all zero bytes; else `new`."""
    kept = _same_or_new(new, old)
    if kept is new and new.nbytes >= LARGE and not new.reshape(-1).view(np.uint8).any():
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
