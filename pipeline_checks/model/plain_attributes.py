"""State a layer keeps outside Keras variables: its plain attributes, compared between two models."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline_checks.model.layers import FoundLayer, walk_layers

PLAIN = (bool, int, float, str, np.ndarray, np.generic, type(None))


@dataclass(frozen=True)
class DifferingAttribute:
    """A plain attribute of a layer whose value differs between two models of the same layers."""

    found: FoundLayer  # in the first model
    attribute: str
    first: Any
    second: Any

    @property
    def constructor_argument(self) -> bool:
        return self.attribute in inspect.signature(type(self.found.layer).__init__).parameters

    @property
    def in_config(self) -> bool:
        return self.attribute in config_keys(self.found.layer)


def differing_attributes(first, second) -> list[DifferingAttribute]:
    """Public plain attributes (numbers, strings, arrays) whose values differ between the layers of two
    models, layer by layer in walking order; layers of different classes are skipped."""
    found = []
    for a, b in zip(walk_layers(first), walk_layers(second)):
        if type(a.layer) is not type(b.layer):
            continue
        mine, theirs = _plain_attributes(a.layer), _plain_attributes(b.layer)
        for attribute in sorted(set(mine) | set(theirs)):
            if not _same_value(mine.get(attribute), theirs.get(attribute)):
                found.append(DifferingAttribute(a, attribute, mine.get(attribute), theirs.get(attribute)))
    return found


def config_keys(layer) -> set:
    """The keys of `layer.get_config()`; none where it fails."""
    try:
        return set(layer.get_config())
    except Exception:  # noqa: BLE001 - a config that fails names no keys
        return set()


def _plain_attributes(layer) -> dict:
    return {
        key: value
        for key, value in vars(layer).items()
        if not key.startswith("_") and key != "name" and isinstance(value, PLAIN)
    }


def _same_value(a, b) -> bool:
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        return a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))
    return a == b
