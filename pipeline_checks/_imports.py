"""The one importer of 'package.module:attribute' names, and its rule for `sys.path`.

The rule, wherever a name is given (declared pipelines, `pipeline-checks MODULE:FACTORY`,
`diagnose --preprocess`): the current directory is on the path while the name is imported,
as `python -m` puts it, and under pytest the rootdir too, so a project's module found by
`python -m pytest` from its root is found by every command. The directories are added only
where missing, and taken out again afterwards.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline_checks._text import listed

SHOWN = 5  # public callables named when no name is close


class NotImportable(ValueError):
    """A 'module:attribute' name cannot be imported; the message names it and why."""


def current_directory() -> dict[str, Path]:
    """The directories of the rule outside pytest: the current one."""
    return {"the current directory": Path(os.getcwd())}


def under_pytest(rootdir: Path) -> dict[str, Path]:
    """The directories of the rule under pytest: the current one and the rootdir."""
    return {**current_directory(), "the rootdir": Path(rootdir)}


@contextlib.contextmanager
def on_path(directories: Iterable[Path]) -> Iterator[None]:
    """Each directory first on `sys.path` (as `python -m` puts the current one), unless it is there already."""
    added = []
    for directory in directories:
        here = os.path.abspath(directory)
        if here not in added and not any(os.path.abspath(entry or os.curdir) == here for entry in sys.path):
            sys.path.insert(len(added), here)
            added.append(here)
    try:
        yield
    finally:
        for here in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(here)


def checked_name(spec: Any, what: str, form: str, example: str) -> str:
    """`spec` when it is 'dotted.module:dotted.attribute'; NotImportable naming it otherwise."""
    module_name, _, attribute = str(spec).partition(":")
    parts = module_name.split(".") + attribute.split(".")
    if not isinstance(spec, str) or not all(part.isidentifier() for part in parts):
        raise NotImportable(
            f"{what} {spec!r} is not a {form.rpartition(':')[2]} name; expected {form} "
            f"(dotted names, one colon), e.g. {example}"
        )
    return spec


def import_named(spec: str, what: str, directories: dict[str, Path]) -> tuple[Any, ModuleType]:
    """The object 'package.module:attribute' names (dotted attributes too), and its module.

    Args:
        spec: the name, already in its form (see `checked_name`).
        what: how messages call it, e.g. "declared pipeline" or "preprocessing".
        directories: description -> directory put on the path while importing (`current_directory()`,
            `under_pytest(rootdir)`).

    Raises:
        NotImportable: naming `spec`, and the module's error or the missing attribute and what is
            close; never the import's traceback.
    """
    module_name, _, attribute = spec.partition(":")
    importlib.invalidate_caches()  # a module written since the last import must be found
    try:
        with on_path(directories.values()):
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(f"{error.name}.")):
            raise NotImportable(
                f"{what} {spec!r}: no module named {error.name!r} (looked in {_described(directories)} "
                f"and in the installed packages); run from the folder that holds {error.name.split('.')[0]}, "
                "or install it"
            ) from None
        raise NotImportable(_import_failure(spec, what, module_name, error)) from None
    except Exception as error:  # noqa: BLE001 - the user's module: whatever it raises is theirs to read
        raise NotImportable(_import_failure(spec, what, module_name, error)) from None
    return _attribute(module, module_name, attribute, spec, what), module


def error_text(error: BaseException) -> str:
    """'TypeName: first line of the message'."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _described(directories: dict[str, Path]) -> str:
    """'the current directory /a, which is on the path as python -m puts it', one or more directories."""
    seen: dict[str, str] = {}
    for description, directory in directories.items():
        seen.setdefault(os.path.abspath(directory), description)
    places = [f"{description} {path}" for path, description in seen.items()]
    if len(places) == 1:
        return f"{places[0]}, which is on the path as python -m puts it,"
    return f"{' and '.join(places)}, which are on the path while it is imported,"


def _import_failure(spec: str, what: str, module_name: str, error: BaseException) -> str:
    return f"{what} {spec!r}: importing module {module_name!r} raised {error_text(error)}"


def _attribute(module, module_name: str, attribute: str, spec: str, what: str):
    """`module.<attribute>`, dotted; NotImportable naming the missing part and what is close."""
    value, owner = module, f"module {module_name!r}"
    parts = attribute.split(".")
    missing = object()
    for index, part in enumerate(parts):
        try:
            found = getattr(value, part, missing)
        except Exception as error:  # noqa: BLE001 - a property of the user's object raising
            raise NotImportable(f"{what} {spec!r}: reading {part!r} of {owner} raised {error_text(error)}") from None
        if found is missing:
            raise NotImportable(f"{what} {spec!r}: {owner} has no attribute {part!r}; {_close_names(value, part)}")
        value, owner = found, repr(f"{module_name}:{'.'.join(parts[: index + 1])}")
    return value


def _close_names(owner, name: str) -> str:
    """The public names of `owner` close to `name`, else a few of its public callables."""
    public = sorted(n for n in dir(owner) if not n.startswith("_"))
    close = difflib.get_close_matches(name, public, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    values = {n: inspect.getattr_static(owner, n, None) for n in public}
    callables = [n for n, v in values.items() if callable(v) and not inspect.ismodule(v)]
    return f"its public callables: {listed(callables, SHOWN)}" if callables else "it has no public callables"
