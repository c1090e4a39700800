"""Give memory that the checks freed back to the operating system, before a step that needs much.

Two things keep freed memory in the process. glibc's malloc, once it has freed a mapping the
size of a weight array, serves later arrays of that size from its heap and keeps their pages:
`malloc_trim(0)` returns them (where the C library has no such call, macOS, musl or Windows,
this only collects garbage). And TensorFlow registers the gradient function of every traced
training step in a process-wide registry that never shrinks (keras-team/keras#17458): a
registration is dropped here once every variable its graph accessed has died, when the graph
can no longer run.

A full collection walks every object of the process; `older_objects_left_out` keeps what
existed before a pipeline's checks began out of the collections for that span. What each step
saves is measured in docs/benchmarks.md, under memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import sys
from collections.abc import Iterator

_CUSTOM_GRADIENT = "CustomGradient-"  # tf.custom_gradient's registration names in graph mode


def release_freed_memory(collect: bool = True) -> None:
    """Collect unreachable objects (a model's layers refer to each other) and return free heap pages.

    `collect=False` only returns pages, for what reference counting freed already (a full
    collection walks every object of the process: 0.3 to 0.5 s once TensorFlow, JAX or torch is in).
    """
    if collect:
        gc.collect()
        if _forget_dead_custom_gradients():
            gc.collect()  # the graphs those registrations held
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextlib.contextmanager
def older_objects_left_out() -> Iterator[None]:
    """Leave every object that exists now out of garbage collections (`gc.freeze`) until the end.

    Objects created inside are collected as usual. At the end the older ones return to the
    oldest generation (`gc.unfreeze`), so garbage among them waits only until the next full
    collection. Where objects are frozen already (by the process itself, or an outer use) this
    changes nothing.
    """
    if gc.get_freeze_count():
        yield
        return
    from pipeline_checks.model import compat

    try:
        compat.keras()  # imported first: Keras and its backend are most of the objects a collection walks
    except Exception:  # noqa: BLE001 - a Keras that does not import is for the checks to report, not a test's setup
        pass
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _forget_dead_custom_gradients() -> int:
    """Drop TensorFlow's gradient registrations whose graphs accessed only dead variables."""
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        return 0  # TensorFlow not imported, or a version that registers differently
    dead = [
        name
        for name, entry in registry.items()
        if name.startswith(_CUSTOM_GRADIENT) and _accessed_only_dead_variables(entry)
    ]
    for name in dead:
        del registry[name]
    return len(dead)


def _accessed_only_dead_variables(entry) -> bool:
    graph = _graph_of(entry.get("type") if isinstance(entry, dict) else None)
    if graph is _TAKEN_APART:
        return True
    variables = []
    while graph is not None:  # a branch of a cond inside the step: its function's graph holds the variables
        variables += getattr(graph, "_weak_variables", None) or []
        graph = getattr(graph, "outer_graph", None)
    return bool(variables) and all(ref() is None for ref in variables)


# A graph TensorFlow has already taken apart (2.12 does once its function died): its
# operations no longer know it, so nothing can differentiate through them again.
_TAKEN_APART = object()


def _graph_of(function, depth: int = 3):
    """The graph of the tensors a registered gradient function closes over (found within `depth`
    closures), `_TAKEN_APART`, or None where it closes over no graph tensor."""
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if hasattr(item, "op"):  # a graph tensor (an eager one has no op)
                return getattr(item, "graph", None) or _TAKEN_APART
        if depth > 1 and callable(value):
            graph = _graph_of(value, depth - 1)
            if graph is not None:
                return graph
    return None


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # the running process's own C library
    except (OSError, AttributeError):
        return None
