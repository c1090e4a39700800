"""Non-deterministic kernels simulated on a machine whose kernels are deterministic."""

from __future__ import annotations

import numpy as np


def nudge_replays(monkeypatch, relative: float = 1e-6) -> None:
    """Make check_determinism's replays end with every float weight moved by `relative`, as kernels
    that sum in another order each run do: same data, inputs, initial weights and first-step loss."""
    from pipeline_checks.checks import determinism

    real_replay = determinism.replay_of

    def replay_with_kernel_noise(run, epochs=None):
        again = real_replay(run, epochs)
        again.final = tuple(w * np.float32(1 + relative) if w.dtype.kind == "f" else w for w in again.final)
        return again

    monkeypatch.setattr(determinism, "replay_of", replay_with_kernel_noise)
