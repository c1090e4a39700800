"""From declared names ('package.module:factory') to the pipelines the suite checks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline_checks import _imports
from pipeline_checks.pipelines.pipeline import Pipeline


class PipelineDeclarationError(ValueError):
    """A declared pipeline name cannot be imported or does not give pipelines."""


def load_declared(specs: Iterable[str], rootdir: Path | None = None) -> list[Pipeline]:
    """Import each 'package.module:factory' and collect the pipelines it gives.

    The attribute may be a `Pipeline`, a list of them, or a function without arguments
    returning either. Names must be unique across all declarations. The names are imported,
    and the factories called, with the current directory and `rootdir` (pytest's) on
    `sys.path`, as every 'module:attribute' name of the package is (`pipeline_checks._imports`).

    Raises:
        PipelineDeclarationError: naming the declaration that failed and why.
    """
    directories = _imports.current_directory() if rootdir is None else _imports.under_pytest(rootdir)
    pipelines: list[Pipeline] = []
    for spec in specs:
        pipelines += _load(spec, directories)
    names = [p.name for p in pipelines]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PipelineDeclarationError(f"pipeline names must be unique; repeated: {', '.join(repeated)}")
    return pipelines


def _load(spec: str, directories: dict[str, Path]) -> list[Pipeline]:
    attribute = spec.partition(":")[2]
    try:
        _imports.checked_name(spec, "declared pipeline", "package.module:factory", "my_project.pipelines:make_pipeline")
        value, _module = _imports.import_named(spec, "declared pipeline", directories)
    except _imports.NotImportable as error:
        raise PipelineDeclarationError(str(error)) from None
    if callable(value) and not isinstance(value, Pipeline):
        try:
            with _imports.on_path(directories.values()):  # a factory that imports the project's modules
                value = value()
        except Exception as error:  # the user's factory: name it and its error
            raise PipelineDeclarationError(
                f"declared pipeline {spec!r}: calling {attribute}() raised {type(error).__name__}: {error}"
            ) from error
    found = [value] if isinstance(value, Pipeline) else list(value) if isinstance(value, (list, tuple)) else None
    if not found or not all(isinstance(p, Pipeline) for p in found):
        raise PipelineDeclarationError(
            f"declared pipeline {spec!r} must be a pipeline_checks.Pipeline, a list of them, or a function "
            f"returning either; received: {_describe(value)}"
        )
    return found


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {', '.join(sorted({type(v).__name__ for v in value})) or 'nothing'}"
    shown = repr(value)
    return f"{shown if len(shown) <= 60 else shown[:57] + '...'} of type {type(value).__name__}"
