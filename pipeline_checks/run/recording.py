"""What a fit leaves, kept by one Keras callback: for the shared training run and for a `Recorder`.

The callback (`recording_callback`) hands each moment of a fit to a `FitRecord`: the weights
before fit, after its first step, after its first epoch and at its end, each batch's loss and
the epoch logs. `training.train` records into its `TrainingRun` (a `FitRecord`); the public
`Recorder` (`pipeline_checks.attach.recorder`) starts a new record at each fit it is passed to.

The callback's class subclasses the installed Keras' `Callback` and is created once, on first
use, so that importing pipeline_checks imports no Keras.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.state import weight_values
from pipeline_checks.run.timings import Timings


@dataclass
class RecordedHistory:
    """A fit's epoch logs, with the attributes of a Keras `History` the checks read."""

    params: dict
    history: dict = field(default_factory=dict)
    epoch: list = field(default_factory=list)


@dataclass(kw_only=True)
class FitRecord:
    """The fits a recording callback saw: one, or each `model.fit` of a run in stages.

    Snapshots are tuples of NumPy arrays aligned with `weights`; a snapshot keeps the arrays of
    the weights that did not move since the one before it (`model.state.weight_values`).

    Attributes:
        model: the model fit trains.
        weights: its weights, in order.
        trainable: ids of the weights in model.trainable_weights when fit started.
        initial: the weights before the first fit.
        start_state: every variable of the model and its optimizer as fit found them, for
            `training.replay`; None where that is not known.
        after_first_step: the weights after the first fit's first training step.
        after_first_epoch: the weights after the first fit's first epoch.
        first_epoch_logs: that epoch's logs.
        final: the weights when the last fit ended.
        batch_losses: each training step's loss, over every fit.
        logged: the last fit's params and epoch logs.
        steps_in_first_epoch: the steps the first fit's first epoch ran.
        fit_seconds: how long the last fit took.
        finished: whether the last fit reached its end (on_train_end).
        timings: where the run's seconds went, by phase; the callback marks the end of the first
            training step in it.
        replays: the record of the run this one repeats; snapshots at the same moment share its arrays.

    Logs keep their scalar values, as floats; others (a per-class metric) are left out, so that
    recording can never make fit fail.
    """

    model: Any
    weights: tuple
    trainable: frozenset
    initial: tuple
    start_state: Any = field(default=None, repr=False)
    after_first_step: tuple | None = None
    after_first_epoch: tuple | None = None
    first_epoch_logs: dict = field(default_factory=dict)
    final: tuple = ()
    batch_losses: list = field(default_factory=list)
    logged: RecordedHistory | None = None
    steps_in_first_epoch: int | None = None
    fit_seconds: float = 0.0
    finished: bool = False
    timings: Timings = field(default_factory=Timings, repr=False)
    replays: FitRecord | None = field(default=None, repr=False)
    _began: float = field(default=0.0, init=False, repr=False)

    def fit_began(self, params) -> None:
        self.logged = RecordedHistory(dict(params or {}))
        self.finished = False
        self._began = time.perf_counter()

    def step_ended(self, logs) -> None:
        self.batch_losses.append(_scalars({"loss": (logs or {}).get("loss")}).get("loss", math.nan))
        self.timings.step_ended()  # before the snapshot below, which is no part of the step
        if self.after_first_step is None:
            self.after_first_step = self._snapshot(replayed_at="after_first_step")

    def epoch_ended(self, epoch: int, logs) -> None:
        logs = _scalars(logs)
        self.logged.epoch.append(epoch)
        for name, value in logs.items():
            self.logged.history.setdefault(name, []).append(value)
        if self.steps_in_first_epoch is None:
            self.steps_in_first_epoch = len(self.batch_losses)
        if epoch == 0 and self.after_first_epoch is None:  # the first fit's first epoch
            self.after_first_epoch = self._snapshot(replayed_at="after_first_epoch")
            self.first_epoch_logs = logs

    def fit_ended(self) -> None:
        self.final = self._snapshot(self.final or None)  # a later fit starts where the last one ended
        self.fit_seconds = time.perf_counter() - self._began
        self.finished = True

    def _latest_snapshot(self) -> tuple:
        """The last snapshot taken during the first fit, which a new one shares the arrays of unchanged weights with."""
        return next(s for s in (self.after_first_epoch, self.after_first_step, self.initial) if s is not None)

    def _snapshot(self, *like: tuple | None, replayed_at: str = "") -> tuple:
        """The weights now, sharing arrays with the replayed record's snapshot `replayed_at`, with `like`,
        else with the latest snapshot."""
        # JAX's fit keeps the state outside the variables until synchronized.
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        replayed = getattr(self.replays, replayed_at, None) if replayed_at and self.replays is not None else None
        return weight_values(self.weights, replayed, *like, self._latest_snapshot())


def _scalars(logs) -> dict:
    """The logs' scalar values as floats; others (a per-class metric, text) left out: fit must never fail here."""
    scalars = {}
    for name, value in (logs or {}).items():
        if value is None:
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if array.size == 1:
            scalars[name] = float(array.reshape(-1)[0])
    return scalars


def recording_callback(record: FitRecord | None = None):
    """A new recording callback that hands every fit it is passed to to `record`."""
    return recording_callback_class()(record)


@functools.cache
def recording_callback_class() -> type:
    """The recording callback's class: created once, on the installed Keras' `Callback`."""

    class RecordingCallback(compat.keras().callbacks.Callback):
        """Hands each moment of a fit to `self.record` (a `FitRecord`)."""

        def __init__(self, record: FitRecord | None = None):
            super().__init__()
            self.record = record

        def on_train_begin(self, logs=None):
            self.record.fit_began(self.params)

        def on_train_batch_end(self, batch, logs=None):
            self.record.step_ended(logs)

        def on_epoch_end(self, epoch, logs=None):
            self.record.epoch_ended(epoch, logs)

        def on_train_end(self, logs=None):
            self.record.fit_ended()

    RecordingCallback.__module__ = __name__
    RecordingCallback.__qualname__ = "RecordingCallback"
    return RecordingCallback
