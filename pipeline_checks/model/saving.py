"""Saving a model in the `.keras` format and its weights file, and reading Keras' errors when that fails.

Where Keras can save the `.keras` format unzipped (`model.save(folder, zipped=False)`, Keras
3.4 on), a model is written once: a folder with the archive's files (config, metadata,
`model.weights.h5`), which `load_model` loads, and whose weights file, written by the same code
as `save_weights`, `load_weights` loads. Elsewhere a `.keras` file and a `.weights.h5` file.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.layers import walk_layers

# Keras 3: "Could not locate class 'X'"; Keras 2: "Unknown layer: 'X'".
UNKNOWN_CLASS = r"(?:Could not locate \w+|Unknown \w+:) '([^']+)'"


@dataclass
class Saved:
    """Where `model.save` wrote the model, and where its weights file is (or goes)."""

    path: str  # a folder (the .keras format unzipped) or a .keras file
    label: str  # how results name it
    weights_path: str
    error: Exception | None = None  # why model.save failed


def save_once(keras, model, folder: str) -> Saved:
    """Save the model once with `model.save` in `folder`: unzipped where Keras can, so that its
    weights file serves both formats. A failure to save is kept in `Saved.error`, not raised."""
    unzipped = saves_unzipped(keras)
    if unzipped:
        path = os.path.join(folder, "model")
        saved = Saved(path, ".keras folder", os.path.join(path, "model.weights.h5"))
    else:
        saved = Saved(os.path.join(folder, "model.keras"), ".keras file", os.path.join(folder, "model.weights.h5"))
    try:
        model.save(saved.path, **({"zipped": False} if unzipped else {}))
    except Exception as error:  # noqa: BLE001 - any failure to save is the finding, reported on loading
        saved.error = error
        if unzipped and os.path.exists(saved.weights_path):
            os.remove(saved.weights_path)  # maybe half written: save_weights writes its own
    return saved


def saves_unzipped(keras) -> bool:
    """Whether `model.save` takes `zipped=False` (Keras 3.4 on): a folder with the archive's files."""
    try:
        return "zipped" in inspect.signature(keras.saving.save_model).parameters
    except (AttributeError, TypeError, ValueError):
        return False


@contextlib.contextmanager
def weights_read_from_disk():
    """Make Keras 3's `load_model` extract a `.keras` file's weights to a file beside it and read them there.

    Where free memory allows, `load_model` reads the archive's whole weights file into memory
    first (`saving_lib.is_memory_sufficient`): the weights and the optimizer's slots once more,
    on top of the loaded model. Extracting is `load_model`'s own other path, taken on machines
    with less free memory; the weights loaded are the same. Keras 2 reads from disk already.
    """
    saving_lib = sys.modules.get("keras.src.saving.saving_lib")
    enough = getattr(saving_lib, "is_memory_sufficient", None)
    if enough is None:
        yield
        return
    saving_lib.is_memory_sufficient = lambda model: False
    try:
        yield
    finally:
        saving_lib.is_memory_sufficient = enough


def unregistered_classes(keras, model, custom_objects) -> list[str]:
    """Custom layer classes load_model cannot find by name: not Keras' own, not registered,
    not in custom_objects. (Keras' error for them varies: tf_keras 2.21 raises "'str' object
    is not callable".)"""
    registered_name = getattr(keras.saving, "get_registered_name", None) or keras.utils.get_registered_name
    names = []
    for found in walk_layers(model):
        cls = type(found.layer)
        if compat.from_keras(cls) or cls.__name__ in custom_objects:
            continue
        if ">" not in registered_name(cls):  # registered names read "package>Name"
            names.append(cls.__name__)
    return sorted(set(names))


def move_every_weight(model) -> None:
    """Add 1 to every weight, so that any value a weights file does not carry differs from the trained one
    (a frozen layer's weights would otherwise still equal the training run's, built from the same seed)."""
    for variable in model.weights:
        value = compat.to_numpy(variable)
        if value.dtype != bool:
            variable.assign(value + np.ones((), value.dtype))


def first_sentence(error: Exception) -> str:
    """The error's first sentence, or Keras' inner reason where it wraps one ("Could not locate class 'X'")."""
    message = str(error)
    located = re.search(UNKNOWN_CLASS, message)
    if located:
        return f"{type(error).__name__}: {located.group(0)}"
    # The first sentence of the first paragraph, whose lines Keras often wraps mid-sentence.
    paragraph = " ".join(message.strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.:])\s", paragraph, maxsplit=1)[0].rstrip(".:")
    return f"{type(error).__name__}: {sentence}"[:300]


def unknown_class(message: str) -> str:
    """The class Keras' message says it cannot find, quoted ("'X'"); "" where it names none."""
    match = re.search(UNKNOWN_CLASS, message)
    return f"'{match.group(1)}'" if match else ""
