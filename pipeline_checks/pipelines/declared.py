"""From declared names ('package.module:factory') to the pipelines the suite checks."""

from __future__ import annotations

import importlib
import operator
from typing import Any, Iterable

from pipeline_checks.pipelines.pipeline import Pipeline


class PipelineDeclarationError(ValueError):
    """A declared pipeline name cannot be imported or does not give pipelines."""


def load_declared(specs: Iterable[str]) -> list[Pipeline]:
    """Import each 'package.module:factory' and collect the pipelines it gives.

    The attribute may be a `Pipeline`, a list of them, or a function without arguments
    returning either. Names must be unique across all declarations.

    Raises:
        PipelineDeclarationError: naming the declaration that failed and why.
    """
    pipelines: list[Pipeline] = []
    for spec in specs:
        pipelines += _load(spec)
    names = [p.name for p in pipelines]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PipelineDeclarationError(f"pipeline names must be unique; repeated: {', '.join(repeated)}")
    return pipelines


def _load(spec: str) -> list[Pipeline]:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the user's module: any import error is theirs to read
        raise PipelineDeclarationError(
            f"declared pipeline {spec!r}: cannot import module {module_name!r}: {type(error).__name__}: {error}"
        ) from error
    try:
        value = operator.attrgetter(attribute)(module)
    except AttributeError:
        raise PipelineDeclarationError(f"declared pipeline {spec!r}: module {module_name!r} has no attribute {attribute!r}") from None
    if callable(value) and not isinstance(value, Pipeline):
        try:
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
