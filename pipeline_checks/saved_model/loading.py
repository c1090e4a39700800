"""Load a saved model to diagnose it: always in safe mode, with errors that name the file.

Keras is imported only when a model is loaded.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

from pipeline_checks.errors import DiagnoseError


def load_saved_model(path: str | os.PathLike):
    """`keras.saving.load_model(path, safe_mode=True)`, with an error that names the file."""
    from pipeline_checks.model import compat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}")
    # Keras 2.12 writes .keras files as HDF5 (2.13+ as zip archives), and Keras 2 hands every file
    # but a .keras zip archive to h5py, whose error names neither the file nor what was expected.
    if compat.is_keras3():
        if path.suffix == ".keras" and not zipfile.is_zipfile(path):
            raise DiagnoseError(f"{path} is not a Keras model: a .keras file is a zip archive, and this one is not")
    elif path.suffix == ".keras" and not (zipfile.is_zipfile(path) or _is_hdf5(path)):
        raise DiagnoseError(
            f"{path} is not a Keras model: a .keras file is a zip archive, or an HDF5 file as Keras 2.12 "
            "writes it, and this one is neither"
        )
    elif path.suffix != ".keras" and not _is_hdf5(path):
        raise DiagnoseError(
            f"{path} could not be loaded as a Keras model: File format not supported: Keras 2 loads "
            ".keras files and HDF5 files (.h5), and this one is neither"
        )
    try:
        with warnings.catch_warnings():
            # A compiled, never-fitted model saves an unbuilt optimizer; its variables are irrelevant here.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            with _keras2_safe_mode():
                model = compat.keras().saving.load_model(path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - Keras raises many types here; the message is what helps.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DiagnoseError(f"{path} could not be loaded as a Keras model: {reason}") from None
    if not hasattr(model, "evaluate"):
        raise DiagnoseError(f"{path} holds a {type(model).__name__}, not a Keras model")
    return model


def _keras2_safe_mode():
    """Keras 2 honours `safe_mode` for zip archives only: its HDF5 loader would run the bytecode
    of a saved `lambda`. Its safe-mode scope refuses that; Keras 3 needs none (a null context)."""
    import contextlib
    import importlib

    from pipeline_checks.model import compat

    if compat.is_keras3():
        return contextlib.nullcontext()
    package = compat.keras().__name__.split(".")[0]  # "keras" (tf.keras) or "tf_keras"
    # A private module: keras.src.saving in Keras 2.13+ and tf_keras, keras.saving in 2.12.
    for name in (f"{package}.src.saving.serialization_lib", f"{package}.saving.serialization_lib"):
        try:
            return importlib.import_module(name).SafeModeScope(True)
        except (ImportError, AttributeError):
            continue
    raise DiagnoseError("this Keras 2 has no safe-mode scope, so diagnose cannot load models safely with it")


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(8) == b"\x89HDF\r\n\x1a\n"  # the HDF5 signature, where Keras writes it
