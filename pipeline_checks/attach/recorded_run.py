"""A fit the `Recorder` recorded, as the `TrainingRun` of a `Pipeline` built around its model.

The checks then read it as if they had trained the model themselves: the `Pipeline` reads the
data fit trained on, builds the model untrained by cloning it at the recorded initial weights,
and names the run after the model.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any

from pipeline_checks.model import compat
from pipeline_checks.run.recording import FitRecord


@dataclass(frozen=True)
class CheckSettings:
    """What `Recorder.check` was told about the fit, beside the data."""

    label_encoding: str | None
    preprocess_train: Any
    preprocess_infer: Any
    batch_size: int | None
    seed: int
    options: dict


class NotApplicable(Exception):
    """A family cannot run on the recorded fit; the message says why."""


def recorded_run(fit: FitRecord, data, settings: CheckSettings, seed: int):
    """The Pipeline around the recorded model, and the recorded fit as its TrainingRun."""
    from pipeline_checks.pipelines.pipeline import Pipeline
    from pipeline_checks.run.training import TrainingRun, read_data

    arguments = {"name": fit.model.name, "build_model": functools.partial(_untrained_copy, fit), "data": data}
    arguments.update(
        _given(
            preprocess_train=settings.preprocess_train,
            preprocess_infer=settings.preprocess_infer,
            check_options=settings.options,
        )
    )
    arguments["label_encoding"] = settings.label_encoding or _label_encoding_of(fit.model)
    epochs = _epochs(fit)
    batch_size = settings.batch_size
    if batch_size is None:  # the images spread over fit's steps: count them first
        images = len(Pipeline(**arguments, fit_kwargs={"epochs": epochs}).raw_data())
        batch_size = _batch_size(images, _steps_per_epoch(fit), None)
    pipeline = Pipeline(**arguments, fit_kwargs={"epochs": epochs, "batch_size": batch_size})
    raw, x_train, y_train = read_data(pipeline, seed)  # as the shared run reads a pipeline's data
    _batch_size(len(raw), _steps_per_epoch(fit), settings.batch_size)
    run = TrainingRun(
        pipeline=pipeline,
        seed=seed,
        model=fit.model,
        history=fit.logged,
        raw=raw,
        x_train=x_train,
        y_train=y_train,
        x_infer=pipeline.infer_inputs(raw.images),
        weights=fit.weights,
        trainable=_trainable_as_set(fit),
        initial=fit.initial,
        after_first_step=fit.after_first_step,
        after_first_epoch=fit.after_first_epoch,
        first_epoch_logs=dict(fit.first_epoch_logs),
        final=fit.final,
        batch_losses=list(fit.batch_losses),
        steps_in_first_epoch=fit.steps_in_first_epoch,
        fit_seconds=fit.fit_seconds,
        finished=fit.finished,
        seconds=fit.fit_seconds,
        start_state=fit.start_state,
    )
    return pipeline, run


def _steps_per_epoch(fit: FitRecord) -> int | None:
    steps = fit.logged.params.get("steps")
    return int(steps) if steps else fit.steps_in_first_epoch


def _epochs(fit: FitRecord) -> int:
    return int(fit.logged.params.get("epochs") or len(fit.logged.epoch) or 1)


def _trainable_as_set(fit: FitRecord) -> frozenset:
    """Ids of the weights the user left trainable for fit: what the frozen-layer checks compare with.

    Keras 2 runs fit with the `trainable` flags of compile time (RespectCompiledTrainableState)
    and puts the user's back when fit returns: inside fit, a layer frozen after compile still
    looks trainable. There the flags are read now, after fit, as the user set them.
    """
    if compat.is_keras3():
        return fit.trainable
    return frozenset(id(v) for v in fit.model.trainable_weights)


def _given(**arguments) -> dict:
    """The arguments that are not None: Pipeline's own defaults stand for the others."""
    return {name: value for name, value in arguments.items() if value is not None}


def _batch_size(images: int, steps: int | None, given: int | None) -> int:
    """fit's batch size: as given, else the images spread evenly over fit's steps; ValueError
    where the images cannot make fit's steps per epoch in batches of that size."""
    if not steps:
        return given or images
    size = given or math.ceil(images / steps)
    if math.ceil(images / size) != steps:
        hint = "" if given else ", and its batch_size"
        raise ValueError(
            f"the data does not match the recorded fit: {images} images make {math.ceil(images / size)} batches of "
            f"{size}, but fit ran {steps} steps per epoch; pass the data fit trained on{hint} (a fit with "
            f"validation_split or steps_per_epoch trains on other batches); received: {images} images, "
            f"batch_size={given!r}"
        )
    return size


def _label_encoding_of(model) -> str:
    """How fit received the labels, as the compiled loss expects them."""
    from pipeline_checks.model.losses import loss_facts

    loss = loss_facts(getattr(model, "loss", None))
    if loss.kind == "one_hot" or (loss.kind == "binary" and (_output_width(model) or 1) > 1):
        return "one_hot"
    return "sparse"


def _output_width(model) -> int | None:
    try:
        return int(model.outputs[0].shape[-1]) if len(model.outputs) == 1 else None
    except (AttributeError, TypeError, ValueError, IndexError):  # a subclassed model, or no static width
        return None


def initial_loss_of(run) -> float:
    """The training-mode loss at the recorded initial weights, as the first step saw it; the model
    gets its state back (the caller restores it too)."""
    from pipeline_checks.model.passes import initial_loss
    from pipeline_checks.model.state import VariableSnapshot

    now = VariableSnapshot.of(_unique([*run.weights, *run.model.variables, *compat.metric_variables(run.model)]))
    try:
        for variable, value in zip(run.weights, run.initial):
            variable.assign(value)
        return initial_loss(run.model, run.x_train, run.y_train, run.pipeline.batch_size)
    except Exception as error:  # e.g. inputs of a shape the model does not take
        raise ValueError(
            f"the loss of the recorded model at its initial weights on the data's training inputs (shape "
            f"{tuple(run.x_train.shape)}) raised {type(error).__name__}: {error}; pass the data fit trained on "
            "and the preprocess_train that made fit's inputs from it"
        ) from error
    finally:
        now.restore()


def _untrained_copy(fit: FitRecord):
    """A compiled clone of the recorded model at the weights fit started from: `build_model`."""
    keras = compat.keras()
    model = fit.model
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(list(fit.initial))
        copy.compile(**_compile_arguments(model))
    except Exception as error:
        raise NotApplicable(f"the model cannot be cloned untrained ({type(error).__name__}: {error})") from error
    return copy


def _compile_arguments(model) -> dict:
    """What the model was compiled with, with its own optimizer and metric objects for the copy."""
    # Keras 2.12+ and Keras 3 keep compile's arguments as given.
    arguments = dict(getattr(getattr(model, "_compile_config", None), "config", None) or {"loss": model.loss})
    arguments["optimizer"] = type(model.optimizer).from_config(model.optimizer.get_config())
    for name in ("metrics", "weighted_metrics"):
        arguments[name] = _fresh_metrics(arguments.get(name))
    return _given(**arguments)


def _fresh_metrics(metrics):
    """Metric objects copied (they hold state); names and functions as they are."""
    if isinstance(metrics, (list, tuple)):
        return type(metrics)(_fresh_metrics(m) for m in metrics)
    if isinstance(metrics, dict):
        return {name: _fresh_metrics(m) for name, m in metrics.items()}
    if hasattr(metrics, "update_state") and hasattr(metrics, "get_config"):
        return type(metrics).from_config(metrics.get_config())
    return metrics


@contextlib.contextmanager
def left_as_found(model):
    """Put every variable of the model, its optimizer and its metrics back bit for bit on exit:
    the checks evaluate, recalibrate and probe the user's model, and must leave nothing changed."""
    from pipeline_checks.model.state import VariableSnapshot

    optimizer = getattr(model, "optimizer", None)
    optimizer_variables = compat.optimizer_variables(optimizer) if optimizer is not None else []
    state = VariableSnapshot.of(
        _unique([*model.weights, *model.variables, *optimizer_variables, *compat.metric_variables(model)])
    )
    try:
        yield
    finally:
        state.restore()


def _unique(variables) -> list:
    return list({id(v): v for v in variables}.values())
