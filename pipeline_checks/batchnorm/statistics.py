"""Finding BatchNormalization layers, nested models included, and reading their statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TRAINING_ONLY_LAYERS = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomCrop",
    "RandomContrast",
    "RandomBrightness",
)


@dataclass(frozen=True)
class FoundLayer:
    """A layer and its path from the model, e.g. 'resnet50/conv1_bn'."""

    path: str
    layer: Any


def walk_layers(model) -> list[FoundLayer]:
    """Every layer inside `model`, depth first, each once, with its path."""
    from pipeline_checks.model import compat

    found, seen = [], set()

    def visit(layer, prefix):
        for child in compat.sublayers(layer):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{prefix}{child.name}"
            found.append(FoundLayer(path, child))
            visit(child, path + "/")

    visit(model, "")
    return found


def find_batchnorm(model) -> list[FoundLayer]:
    """Every BatchNormalization layer inside `model` (V1, V2, synchronized), with its path."""
    from pipeline_checks.model import compat

    classes = compat.batchnorm_classes()
    return [found for found in walk_layers(model) if isinstance(found.layer, classes)]


def find_training_only_layers(model) -> list[FoundLayer]:
    """Layers that behave differently in training (dropout, noise, random augmentation)."""
    return [f for f in walk_layers(model) if type(f.layer).__name__ in TRAINING_ONLY_LAYERS]


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
