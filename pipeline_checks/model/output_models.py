"""One output of a model with several, as a model of its own: the same layers, compiled as that output.

A check that judges targets (labels, overfit, agreement) judges each output of a model with
several with that output's own loss and metrics. The view is a functional model from the
model's inputs to that output, over the same layers and variables (so it reads the trained
weights and BatchNorm statistics, and a change to them is a change to the whole model), compiled
with the loss and metrics the whole model was compiled with for that output and with its
optimizer (which the view never steps: training stays the whole model's).
"""

from __future__ import annotations

import weakref

from pipeline_checks.model import compat

_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {output name: its view}


def output_names(model) -> tuple[str, ...]:
    """The names of a model's outputs, in the order of `model.outputs` (one name for one output)."""
    names = getattr(model, "output_names", None)
    return tuple(str(n) for n in names) if names else ()


def output_model(model, name: str):
    """The view of `model`'s output `name`: built once per model and output."""
    views = _VIEWS.setdefault(model, {})
    if name not in views:
        views[name] = _view(model, name)
    return views[name]


def _view(model, name: str):
    keras = compat.keras()
    names = output_names(model)
    try:
        outputs = dict(zip(names, model.outputs))
        inputs = model.inputs
    except (AttributeError, ValueError) as error:  # a subclassed model: no graph to take one output of
        raise ValueError(
            f"a model with several outputs is judged output by output through its functional graph, which "
            f"{type(model).__name__} does not have ({error}); build it with keras.Model(inputs, outputs)"
        ) from None
    view = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[name], name=f"{model.name}_{name}")
    loss, metrics = compiled_for(model, name, names)
    view.compile(optimizer=model.optimizer, loss=loss, metrics=metrics)
    return view


def compiled_for(model, name: str, names: tuple[str, ...]) -> tuple:
    """The loss and metrics `model` was compiled with for its output `name`."""
    if compat.is_keras3():
        config = model._compile_config.config  # the arguments compile was given
        loss, metrics = config.get("loss"), config.get("metrics")
    else:
        loss, metrics = model.compiled_loss._user_losses, model.compiled_metrics._user_metrics
    return _for_output(loss, name, names), [_fresh(m) for m in _metrics_for(metrics, name, names)]


def _for_output(given, name: str, names: tuple[str, ...]):
    """One output's entry of a compile argument given per output (a dict or list), or the argument itself."""
    if isinstance(given, dict):
        return given.get(name)
    if isinstance(given, (list, tuple)) and len(given) == len(names) and len(names) > 1:
        return given[names.index(name)]
    return given


def _metrics_for(metrics, name: str, names: tuple[str, ...]) -> list:
    """One output's metrics: from a dict, from a list of lists in output order, or a flat list every output gets."""
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        found = metrics.get(name) or []
    elif isinstance(metrics, (list, tuple)) and any(isinstance(m, (list, tuple)) for m in metrics):
        found = metrics[names.index(name)] if len(metrics) == len(names) else []
    else:
        found = metrics
    return list(found) if isinstance(found, (list, tuple)) else [found]


def _fresh(metric):
    """A metric object of the same kind and settings, its state apart from the whole model's."""
    if isinstance(metric, str) or callable(metric) and not hasattr(metric, "get_config"):
        return metric
    return type(metric).from_config(metric.get_config())


def per_output(targets) -> list[tuple]:
    """(key, targets) of each output: a dict's items, a list's positions; [(None, targets)] for one output."""
    if isinstance(targets, dict):
        return list(targets.items())
    if isinstance(targets, (list, tuple)) and len(targets) > 1 and all(hasattr(t, "shape") for t in targets):
        return list(enumerate(targets))
    return [(None, targets)]


def output_logs(logs: dict, name: str, names: tuple[str, ...]) -> dict:
    """The logs of a fit of the whole model, as a fit of output `name` alone would log them:
    `<name>_loss` as `loss`, `val_<name>_accuracy` as `val_accuracy`; the other outputs' and the total left out."""
    ours = {}
    for key, value in (logs or {}).items():
        prefix, rest = ("val_", key[4:]) if key.startswith("val_") else ("", key)
        owner = max((n for n in names if rest.startswith(f"{n}_")), key=len, default=None)
        if owner == name:
            ours[prefix + rest[len(name) + 1 :]] = value
    return ours
