"""Walking a model's layers, nested models included: BatchNormalization and training-only layers."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from pipeline_checks.model import compat

# Layers that act only when called with training=True: dropout and noise of every kind
# (EfficientNet's stochastic depth is a Dropout with noise_shape), stochastic depth or drop
# path layers by name, and random augmentation (Keras' Random* layers, RandAugment, mix-ups).
TRAINING_ONLY_LAYERS = re.compile(
    r"Dropout|Noise|StochasticDepth|DropPath|^Random|RandAugment|AugMix|MixUp|CutMix|Solarization"
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
    return [f for f in walk_layers(model) if TRAINING_ONLY_LAYERS.search(type(f.layer).__name__)]


@contextlib.contextmanager
def training_only_layers_in_inference(model):
    """Within the block, the model's training-only layers run as at inference even when the
    model is called with training=True, so a training pass differs from inference in
    BatchNormalization alone. Their `call` is wrapped on the instance and restored after.
    """
    wrapped = []
    try:
        for found in find_training_only_layers(model):
            layer = found.layer
            original = layer.call

            def in_inference(*args, _original=original, **kwargs):
                if "training" in kwargs:
                    kwargs["training"] = False
                return _original(*args, **kwargs)

            # object.__setattr__: Keras' own __setattr__ would track the function as state.
            object.__setattr__(layer, "call", in_inference)
            wrapped.append(layer)
        yield
    finally:
        for layer in wrapped:
            object.__delattr__(layer, "call")
