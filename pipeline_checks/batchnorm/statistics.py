"""Finding BatchNormalization layers, nested models included, and reading their statistics."""

from __future__ import annotations

import numpy as np


def moving_statistics(layer) -> tuple[np.ndarray, np.ndarray]:
    from pipeline_checks.model import compat

    return compat.to_numpy(layer.moving_mean), compat.to_numpy(layer.moving_variance)


def drift(mean_a, variance_a, mean_b, variance_b, epsilon: float = 1e-3) -> float:
    """How far normalization with statistics `a` is from normalization with `b`.

    The mean shift in units of b's standard deviation plus the absolute log ratio of the
    standard deviations, averaged over channels: 0 when they agree.
    """
    std_a = np.sqrt(np.asarray(variance_a, dtype=np.float64) + epsilon)
    std_b = np.sqrt(np.asarray(variance_b, dtype=np.float64) + epsilon)
    shift = np.abs(np.asarray(mean_a, dtype=np.float64) - mean_b) / std_b
    return float(np.mean(shift) + np.mean(np.abs(np.log(std_a / std_b))))
