"""Whether a frozen normalization layer still normalizes with batch statistics in training mode.

Keras 2's V1 BatchNormalization (and layers ported from it) do so with `trainable=False`,
and in Keras 2 the frozen layer's updates are skipped, so its moving statistics stay put
while fit feeds the layers above it activations that inference never produces. Calling
the layer itself in both modes on the same probe tells: a layer that uses its moving
statistics when frozen gives the same outputs.
"""

from __future__ import annotations

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.state import VariableSnapshot

PROBE_BATCH = 4
TOLERANCE = 1e-3  # relative to the outputs' scale; the two modes differ by O(1) when they differ


def uses_batch_statistics_when_frozen(layer, seed: int = 0) -> bool | None:
    """True when `layer` (a frozen layer with `moving_mean`/`moving_variance`) gives other
    outputs in training mode than in inference mode; None when it cannot be probed.

    The probe is shifted and scaled away from the layer's moving statistics so that batch
    statistics and moving statistics cannot agree by chance. The layer's variables are restored.
    """
    shape = compat.layer_input_shape(layer)
    if shape is None or not hasattr(layer, "moving_mean") or not hasattr(layer, "moving_variance"):
        return None
    mean, variance = compat.to_numpy(layer.moving_mean), compat.to_numpy(layer.moving_variance)
    axis = _channel_axis(layer, len(shape))
    shape = [PROBE_BATCH if i == 0 else (dimension or 3) for i, dimension in enumerate(shape)]
    if shape[axis] != mean.shape[0]:
        return None
    broadcast = [1] * len(shape)
    broadcast[axis] = mean.shape[0]
    noise = np.random.default_rng(seed).standard_normal(shape)
    probe = mean.reshape(broadcast) + np.sqrt(variance + 1e-3).reshape(broadcast) * (2.0 + 3.0 * noise)
    probe = probe.astype("float32")
    state = VariableSnapshot.of(layer.variables)
    try:
        training = compat.to_numpy(layer(probe, training=True)).astype(np.float64)
        inference = compat.to_numpy(layer(probe, training=False)).astype(np.float64)
    except Exception:  # a layer that cannot take the probe is not judged
        return None
    finally:
        state.restore()
    scale = max(float(np.abs(inference).max()), 1.0)
    return bool(np.abs(training - inference).max() > TOLERANCE * scale)


def _channel_axis(layer, rank: int) -> int:
    axis = getattr(layer, "axis", -1)
    if isinstance(axis, (list, tuple)):  # Keras 2 stores a list once built
        axis = axis[0] if len(axis) == 1 else -1
    return int(axis) % rank
