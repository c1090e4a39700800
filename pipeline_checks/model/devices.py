"""One line describing the Keras stack, for the pytest report header."""

from __future__ import annotations

from pipeline_checks.model import compat


def describe() -> str:
    """E.g. 'keras 3.15.1 (backend tensorflow), tensorflow 2.21.0, devices CPU:0'."""
    keras_version = compat.keras_version()
    backend = compat.backend()
    tensorflow = compat.tensorflow_version() or "not installed"
    devices = ", ".join(compat.devices())
    return f"keras {keras_version} (backend {backend}), tensorflow {tensorflow}, devices {devices}"
