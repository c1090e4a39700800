"""Walking a model's layers, nested models included: BatchNormalization and training-only layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline_checks.model import compat

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
    classes = compat.batchnorm_classes()
    return [found for found in walk_layers(model) if isinstance(found.layer, classes)]


def find_training_only_layers(model) -> list[FoundLayer]:
    """Layers that behave differently in training (dropout, noise, random augmentation)."""
    return [f for f in walk_layers(model) if type(f.layer).__name__ in TRAINING_ONLY_LAYERS]
