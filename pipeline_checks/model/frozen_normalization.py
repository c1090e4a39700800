"""Which frozen layers of a model still normalize with batch statistics in training mode.

The per-layer probe is `pipeline_checks.batchnorm.frozen_probe`; this walks a model's layers
with it, probing a layer frozen once as it ran then, even where it is trainable now.
"""

from __future__ import annotations

from collections.abc import Iterable


def on_batch_statistics(model, frozen: Iterable[str], seed: int, probed: dict) -> list[tuple[str, str]]:
    """(path, class) of the layers at paths `frozen` that normalize with batch statistics when frozen.

    Args:
        model: the Keras model.
        frozen: paths (as `walk_layers` gives them) of the layers to probe, frozen or not now.
        seed: the seed of the probe's random batch.
        probed: path -> (path, class) or None, the answers of earlier calls: each layer is probed
            once, and this is filled in.

    Returns:
        The layers that do, in the model's layer order; the class reads "PortedBatchNorm of module".
    """
    from pipeline_checks.batchnorm.frozen_probe import uses_batch_statistics_when_frozen
    from pipeline_checks.model.layers import walk_layers

    frozen = set(frozen)
    layers = walk_layers(model)
    for found in layers:
        if found.path not in frozen or found.path in probed:
            continue
        layer, trainable = found.layer, found.layer.trainable
        try:
            if trainable:
                layer.trainable = False
            uses = uses_batch_statistics_when_frozen(layer, seed)
        finally:
            if trainable:
                layer.trainable = True
        probed[found.path] = (found.path, f"{type(layer).__name__} of {type(layer).__module__}") if uses else None
    return [probed[path] for path in dict.fromkeys(f.path for f in layers) if path in frozen and probed.get(path)]
