"""The check battery: one module per family, each a plain `check_<name>(pipeline, ...) -> CheckResult`.

Checks that need a trained model share one training run per pipeline and seed
(`pipeline_checks.run.training.shared_run`). Importing this package imports no Keras.
"""

from importlib import import_module

from pipeline_checks.results.check_result import CheckResult

FAMILIES = (
    "agreement",
    "frozen_layers",
    "preprocessing",
    "labels",
    "overfit",
    "numerics",
    "variables_change",
    "determinism",
    "save_load",
)

__all__ = ["CheckResult", "FAMILIES", "all_checks", *(f"check_{name}" for name in FAMILIES)]


def all_checks() -> dict:
    """Every check function by family name, in the order above."""
    return {name: getattr(import_module(f"pipeline_checks.checks.{name}"), f"check_{name}") for name in FAMILIES}


def __getattr__(name):
    if name.startswith("check_") and name[len("check_") :] in FAMILIES:
        return getattr(import_module(f"pipeline_checks.checks.{name[len('check_') :]}"), name)
    raise AttributeError(f"module 'pipeline_checks.checks' has no attribute {name!r}")
