"""Attach the checks to a fit the repository runs itself: one Keras callback.

    recorder = pipeline_checks.Recorder()
    model.fit(x, y, callbacks=[recorder], ...)
    recorder.assert_ok(data)

During fit the recorder keeps what a shared training run keeps (`run/training.py`): the
weights before fit, after its first step, after its first epoch and at the end, each
batch's loss, the history, the trainable weights when fit started. `check(data)` turns
that into the `TrainingRun` of a `Pipeline` built around the recorded model, so the
families that judge one recorded run read it as if they had trained it themselves.

`Recorder` is a subclass of the installed Keras' `Callback`, created on first use (this
module's `__getattr__`), so that importing pipeline_checks imports no Keras.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from pipeline_checks.model import compat
from pipeline_checks.model.random_state import random_state_kept
from pipeline_checks.model.state import weight_values

# The families that judge a single recorded run. The others need a fit of their own:
# determinism fits twice from one seed, preprocessing and save_load build and train the
# pipeline's model themselves.
RECORDED_FAMILIES = ("agreement", "frozen_layers", "labels", "overfit", "numerics", "variables_change")
NEEDS_INITIAL_LOSS = ("overfit", "numerics")  # they read run.initial_loss
NEEDS_OWN_FIT = ("preprocessing", "determinism", "save_load")


def __getattr__(name: str):
    if name == "Recorder":
        return _recorder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _recorder_class():
    """The `Recorder` class: created once, on the installed Keras' `Callback`."""

    class Recorder(compat.keras().callbacks.Callback):
        """A Keras callback that records one fit, then runs the checks on it.

        Example:
            >>> recorder = pipeline_checks.Recorder()
            >>> model.fit(x, y, epochs=15, batch_size=4, callbacks=[recorder])
            >>> recorder.assert_ok((images, labels, class_names), preprocess_train=lambda i: i / 255)

        Each fit the recorder is passed to starts a new recording; the checks judge the last one.
        """

        def __init__(self):
            super().__init__()
            self._fits = 0
            self._last_fit: _FitRecord | None = None

        @property
        def fits(self) -> int:
            """How many fits this recorder has seen start."""
            return self._fits

        def on_train_begin(self, logs=None):
            self._fits += 1
            self._last_fit = _FitRecord.begin(self.model, self.params)

        def on_train_batch_end(self, batch, logs=None):
            self._last_fit.batch_ended(logs)

        def on_epoch_end(self, epoch, logs=None):
            self._last_fit.epoch_ended(epoch, logs)

        def on_train_end(self, logs=None):
            self._last_fit.ended()

        def check(
            self,
            data,
            *,
            label_encoding: str | None = None,
            preprocess_train=None,
            preprocess_infer=None,
            batch_size: int | None = None,
            families=None,
            seed: int = 0,
            **options,
        ) -> list:
            """Run the checks that judge one recorded fit on the last fit; return their `CheckResult`s.

            Args:
                data: the raw data fit trained on, as `Pipeline(data=...)` takes it, e.g.
                    `(images, labels, class_names)` with uint8 images (N, H, W, C).
                label_encoding: "sparse" or "one_hot", as fit received the labels. Default:
                    read from the compiled loss (one-hot for categorical_crossentropy, and for
                    binary_crossentropy on several outputs), else sparse.
                preprocess_train: raw images -> the inputs fit received. Default: float32 pixels.
                preprocess_infer: raw images -> inputs for evaluate and predict. Default:
                    `preprocess_train`.
                batch_size: fit's batch size. Default: the images divided evenly over the
                    steps fit ran per epoch. Give it to have the data's size checked exactly.
                families: names among agreement, frozen_layers, labels, overfit, numerics,
                    variables_change. Default: all six.
                seed: seeds reading the data and the checks' own randomness.
                **options: family name -> keyword arguments of that check, e.g.
                    `overfit={"target_accuracy": 0.9}`, `agreement={"tolerance": 0.1}`.

            Returns:
                One `CheckResult` per family, in the order above.
            """
            settings = _CheckSettings(label_encoding, preprocess_train, preprocess_infer, batch_size, seed, options)
            return _check(self._finished_fit(), data, _checked_families(families), settings)

        def assert_ok(self, data, **kwargs) -> list:
            """`check(data, **kwargs)`, raising `PipelineCheckFailure` with every failed result.

            Returns:
                The results, when all passed.
            """
            __tracebackhide__ = True
            results = self.check(data, **kwargs)
            failures = [r for r in results if not r.passed]
            if failures:
                from pipeline_checks.errors import PipelineCheckFailure

                heading = f"{len(failures)} of {len(results)} checks failed on the recorded fit of {self._last_fit.model.name!r}"
                raise PipelineCheckFailure("\n\n".join([heading + ":", *map(str, failures)]))
            return results

        def _finished_fit(self) -> _FitRecord:
            if self._last_fit is None:
                raise RuntimeError(
                    "Recorder.check needs a recorded fit: pass the recorder to fit first, "
                    "model.fit(x, y, callbacks=[recorder], ...); received: no fit recorded"
                )
            if not self._last_fit.finished:
                raise RuntimeError(
                    "Recorder.check needs a finished fit: the last fit never reached on_train_end "
                    f"(it raised or was interrupted); received: fit {self._fits} unfinished"
                )
            if self._fits > 1:
                warnings.warn(
                    f"Recorder saw {self._fits} fits; the checks judge the last one, which started from the "
                    "weights the earlier fits left (pass a new Recorder to each fit to judge them apart)",
                    UserWarning,
                    stacklevel=3,
                )
            return self._last_fit

    Recorder.__module__ = __name__  # pickled and shown as pipeline_checks.run.recorder.Recorder
    return Recorder


# --- what one fit leaves ------------------------------------------------------------------


@dataclass
class RecordedHistory:
    """The epoch logs of the recorded fit, with the attributes of a Keras `History` the checks read."""

    params: dict
    history: dict = field(default_factory=dict)
    epoch: list = field(default_factory=list)


@dataclass
class _FitRecord:
    """One fit as the callback saw it, in the terms of `TrainingRun`."""

    model: Any
    weights: tuple
    trainable: frozenset
    initial: tuple
    history: RecordedHistory
    start_state: Any = None
    after_first_step: tuple | None = None
    after_first_epoch: tuple | None = None
    first_epoch_logs: dict = field(default_factory=dict)
    final: tuple = ()
    batch_losses: list = field(default_factory=list)
    steps_in_first_epoch: int | None = None
    started: float = 0.0
    seconds: float = 0.0
    finished: bool = False

    @classmethod
    def begin(cls, model, params) -> _FitRecord:
        weights = tuple(model.weights)
        return cls(
            model,
            weights,
            trainable=frozenset(id(v) for v in model.trainable_weights),
            initial=weight_values(weights),
            history=RecordedHistory(dict(params or {})),
            start_state=_state_at_start(model),
            started=time.perf_counter(),
        )

    def batch_ended(self, logs) -> None:
        self.batch_losses.append(float((logs or {}).get("loss", math.nan)))
        if self.after_first_step is None:
            self.after_first_step = self._current(like=self.initial)

    def epoch_ended(self, epoch: int, logs) -> None:
        logs = _scalars(logs)
        self.history.epoch.append(epoch)
        for name, value in logs.items():
            self.history.history.setdefault(name, []).append(value)
        if self.steps_in_first_epoch is None:
            self.steps_in_first_epoch = len(self.batch_losses)
        if epoch == 0:
            self.after_first_epoch = self._current(like=self.after_first_step)
            self.first_epoch_logs = logs

    def ended(self) -> None:
        self.final = self._current(like=self.after_first_epoch or self.after_first_step or self.initial)
        self.seconds = time.perf_counter() - self.started
        self.finished = True

    @property
    def steps_per_epoch(self) -> int | None:
        steps = self.history.params.get("steps")
        return int(steps) if steps else self.steps_in_first_epoch

    @property
    def epochs(self) -> int:
        return int(self.history.params.get("epochs") or len(self.history.epoch) or 1)

    def _current(self, like: tuple | None) -> tuple:
        """The weights now; arrays of weights unchanged since `like` are shared with it."""
        # JAX's fit keeps the state outside the variables until synchronized.
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        return weight_values(self.weights, like)


def _scalars(logs) -> dict:
    """The logs' scalar values as floats; others (a per-class metric) left out: fit must never fail here."""
    scalars = {}
    for name, value in (logs or {}).items():
        try:
            scalars[name] = float(value)
        except (TypeError, ValueError):
            pass
    return scalars


def _state_at_start(model):
    """Every variable of the model and its optimizer as fit found them, for `training.replay`;
    None where the optimizer builds only inside the first step (Keras 2): building it here
    would change the user's fit."""
    from pipeline_checks.model.state import VariableSnapshot

    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", getattr(optimizer, "_built", False)):
        return None
    return VariableSnapshot.of([*model.variables, *compat.optimizer_variables(optimizer)])


# --- checking the recorded fit -------------------------------------------------------------


@dataclass(frozen=True)
class _CheckSettings:
    label_encoding: str | None
    preprocess_train: Any
    preprocess_infer: Any
    batch_size: int | None
    seed: int
    options: dict


class _NotApplicable(Exception):
    """A family cannot run on the recorded fit; the message says why."""


def _checked_families(families) -> tuple[str, ...]:
    """The families to run, in RECORDED_FAMILIES order; ValueError naming what is wrong."""
    if families is None:
        return RECORDED_FAMILIES
    names = [families] if isinstance(families, str) else families
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(
            f"families must be check names among {', '.join(RECORDED_FAMILIES)}; received: families={families!r}"
        )
    own_fit = sorted(set(names) & set(NEEDS_OWN_FIT))
    if own_fit:
        raise ValueError(
            f"{', '.join(own_fit)} cannot judge a recorded fit: determinism fits twice from one seed, "
            "preprocessing and save_load build and train the model themselves; run them on a Pipeline "
            f"(pipeline_checks.checks). A Recorder runs {', '.join(RECORDED_FAMILIES)}; received: families={families!r}"
        )
    unknown = sorted(set(names) - set(RECORDED_FAMILIES))
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))} is no check; a Recorder runs {', '.join(RECORDED_FAMILIES)}; "
            f"received: families={families!r}"
        )
    return tuple(name for name in RECORDED_FAMILIES if name in names)


def _check(fit: _FitRecord, data, families: tuple[str, ...], settings: _CheckSettings) -> list:
    from pipeline_checks.checks import all_checks
    from pipeline_checks.checks.validation import checked_seed
    from pipeline_checks.run.training import forget_shared_runs, share_run

    seed = checked_seed(settings.seed)
    _check_options(settings.options, families)
    _check_built_before_fit(fit)
    checks = all_checks()
    # Reading the data and the checks seed Python, NumPy and Keras: the user's generators, and
    # model, are given back as they were.
    with random_state_kept(), _left_as_found(fit.model):
        pipeline, run = _recorded_run(fit, data, settings, seed)
        if any(name in NEEDS_INITIAL_LOSS for name in families):
            run.initial_loss = _initial_loss(run)
        share_run(run)
        try:
            return [_run_family(checks[name], name, pipeline, seed) for name in families]
        finally:
            forget_shared_runs(pipeline)


def _check_built_before_fit(fit: _FitRecord) -> None:
    """The weights before fit must be known: a model that creates them in its first step has none to record."""
    if not fit.weights and fit.model.weights:
        raise ValueError(
            f"the model {fit.model.name!r} had no weights when fit started: it created them in its first step "
            "(a subclassed model under Keras 2), so the weights before fit are unknown; build it before fit, "
            "e.g. model(x[:1]) or model.build(input_shape); "
            f"received: 0 weights at the start of fit, {len(fit.model.weights)} after"
        )


def _check_options(options: dict, families: tuple[str, ...]) -> None:
    """Options only for families that run; their form is checked by Pipeline(check_options=...)."""
    from pipeline_checks.checks import FAMILIES

    unknown = sorted(set(options) - set(FAMILIES))
    if unknown:
        raise TypeError(
            f"Recorder.check got unexpected keyword arguments {', '.join(unknown)}: besides its own arguments it "
            f"takes check options by family, e.g. overfit={{'target_accuracy': 0.9}}, for {', '.join(families)}; "
            f"received: {', '.join(f'{name}={options[name]!r}' for name in unknown)}"
        )
    idle = sorted(set(options) - set(families))
    if idle:
        raise ValueError(
            f"options given for {', '.join(idle)}, which this check does not run; it runs {', '.join(families)}; "
            f"received: {', '.join(f'{name}={options[name]!r}' for name in idle)}"
        )


def _run_family(check, name: str, pipeline, seed: int):
    from pipeline_checks.errors import PipelineRunError
    from pipeline_checks.results.check_result import failed

    try:
        return check(pipeline, seed, **pipeline.check_options.get(name, {}))
    except PipelineRunError as error:
        if not isinstance(error.__cause__, _NotApplicable):
            raise
        # CheckResult has no "skipped": a check that could not run is reported as not passed, saying why.
        return failed(
            name,
            pipeline,
            f"cannot run on the recorded fit: {error.__cause__}",
            f"  {name} needs the model as it was before fit: the Recorder rebuilds it with keras.models.clone_model "
            "at the recorded initial weights, compiled as the model is, and that failed.\n"
            "  Fix: give the model get_config() (and from_config) so that it can be cloned, or leave the "
            f"family out: families={[f for f in RECORDED_FAMILIES if f != name]!r}.",
            not_applicable=True,
        )


def _recorded_run(fit: _FitRecord, data, settings: _CheckSettings, seed: int):
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
    batch_size = settings.batch_size
    if batch_size is None:  # the images spread over fit's steps: count them first
        images = len(Pipeline(**arguments, fit_kwargs={"epochs": fit.epochs}).raw_data())
        batch_size = _batch_size(images, fit.steps_per_epoch, None)
    pipeline = Pipeline(**arguments, fit_kwargs={"epochs": fit.epochs, "batch_size": batch_size})
    raw, x_train, y_train = read_data(pipeline, seed)  # as the shared run reads a pipeline's data
    _batch_size(len(raw), fit.steps_per_epoch, settings.batch_size)
    run = TrainingRun(
        pipeline=pipeline,
        seed=seed,
        model=fit.model,
        history=fit.history,
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
        seconds=fit.seconds,
        start_state=fit.start_state,
    )
    return pipeline, run


def _trainable_as_set(fit: _FitRecord) -> frozenset:
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
            f"validation_split or steps_per_epoch trains on other batches); received: {images} images, batch_size={given!r}"
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


def _initial_loss(run) -> float:
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


def _untrained_copy(fit: _FitRecord):
    """A compiled clone of the recorded model at the weights fit started from: `build_model`."""
    keras = compat.keras()
    model = fit.model
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(list(fit.initial))
        copy.compile(**_compile_arguments(model))
    except Exception as error:
        raise _NotApplicable(f"the model cannot be cloned untrained ({type(error).__name__}: {error})") from error
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
def _left_as_found(model):
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
