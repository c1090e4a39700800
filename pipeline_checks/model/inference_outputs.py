"""A model's inference-mode outputs, one array per output, from plain calls that change no state."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.forward import forward


def inference_outputs(model, x, batch_size: int) -> list[np.ndarray]:
    """`model(x, training=False)` batch by batch; one array per model output (a dict's sorted by key)."""
    outputs = [forward(model, x[start : start + batch_size], training=False) for start in range(0, len(x), batch_size)]
    flat = [_flatten(output) for output in outputs]
    return [np.concatenate([compat.to_numpy(batch[i]) for batch in flat]) for i in range(len(flat[0]))]


def _flatten(output) -> list:
    if isinstance(output, Mapping):
        return [output[key] for key in sorted(output)]
    if isinstance(output, (list, tuple)):
        return list(output)
    return [output]
