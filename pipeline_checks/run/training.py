"""One seeded training run of a pipeline, recorded for every check that needs a trained model.

Tracing a Keras application's training step costs seconds to tens of seconds, so the
checks share one run per pipeline and seed: the weights before fit, after its first step,
after its first epoch and at the end; each batch's loss; the loss at initialization.

A run is made of stages: one `fit` with the pipeline's `fit_kwargs`, or, where the pipeline
declares its own `train` function, each `model.fit` that function calls (a head on a frozen
base, then the base unfrozen and fine-tuned), or one "custom loop" stage where it calls none.
"""

from __future__ import annotations

import inspect
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline_checks.errors import PipelineRunError, pipeline_step
from pipeline_checks.model import compat
from pipeline_checks.model.compile_arguments import compile_mistake_of
from pipeline_checks.model.passes import initial_metrics
from pipeline_checks.model.random_layers import restart_outside_layers
from pipeline_checks.model.state import weight_values
from pipeline_checks.pipelines.pipeline import Pipeline, RawData
from pipeline_checks.run import timings as phases
from pipeline_checks.run.builds import build, forget_fresh_build, forget_fresh_builds, fresh_build, rebuild_fresh_build
from pipeline_checks.run.memory import release_freed_memory
from pipeline_checks.run.recording import FitRecord, recording_callback
from pipeline_checks.run.timings import Timings

if TYPE_CHECKING:
    from pipeline_checks.oracle.agreement import Agreement


CUSTOM_LOOP = "custom loop"


@dataclass
class Stage:
    """One `fit` of a training run (or the whole of a custom loop that calls no `fit`).

    Attributes:
        index: 1 for the first stage.
        label: "fit 1", "fit 2", ... or "custom loop".
        trainable: ids of the weights in model.trainable_weights when the stage's fit started
            (for a custom loop: when it ended, once the loop had frozen what it freezes).
        start: the run's weights when the stage started (aligned with `run.weights`).
        end: the run's weights when it ended.
        history: the `History` its fit returned; None for a custom loop.
        steps: the training steps (batches) the recording callback saw in it; 0 for a custom loop.
        inputs: the `x` its fit was given (arrays or a dataset); None for a custom loop.
    """

    index: int
    label: str
    trainable: frozenset
    start: tuple
    end: tuple = ()
    history: Any = None
    steps: int = 0
    inputs: Any = None

    @property
    def custom(self) -> bool:
        """A custom training loop: no fit, so no history, no per-batch loss."""
        return self.label == CUSTOM_LOOP


@dataclass(kw_only=True)
class TrainingRun(FitRecord):
    """A pipeline's model after `fit` (and `after_fit`), with what happened on the way.

    The snapshots, losses and logs are the `FitRecord` the recording callback kept; for a run in
    stages, `trainable` holds the ids of the weights any stage trained.
    """

    pipeline: Pipeline
    seed: int
    raw: RawData
    x_train: np.ndarray
    y_train: np.ndarray
    x_infer: np.ndarray
    history: Any = None  # the History the last fit returned; None for a custom loop
    initial_loss: float = math.nan
    initial_logs: dict = field(default_factory=dict)  # that pass's loss and metrics (each output's loss, for several)
    whole: TrainingRun | None = field(default=None, repr=False)  # the run of the whole model, for one output's
    seconds: float = 0.0
    agreements: dict[float, Agreement] = field(default_factory=dict, repr=False)  # by tolerance: run/shared.py
    stages: list = field(default_factory=list)  # the `Stage`s, in order; empty for a run recorded elsewhere

    @property
    def custom_loop(self) -> bool:
        """Whether the run trained in a custom loop: fit's history and batch losses do not exist."""
        return bool(self.stages) and self.stages[-1].custom


def stages_of(run: TrainingRun) -> list[Stage]:
    """The run's stages; a run recorded without them (one fit) is one stage from its initial to its final weights."""
    if run.stages:
        return list(run.stages)
    return [Stage(1, "fit 1", run.trainable, run.initial, run.final, run.history, len(run.batch_losses))]


def stage_name(stage: Stage, of: int) -> str:
    """How reports name a stage: "stage 1 of 2 (fit 1)"; "" for a run of one fit."""
    if of == 1 and not stage.custom:
        return ""
    return f"stage {stage.index} of {of} ({stage.label})"


def train(pipeline: Pipeline, seed: int = 0, epochs: int | None = None) -> TrainingRun:
    """Build the pipeline's model from `seed` and fit it, recording the run.

    Args:
        pipeline: the pipeline.
        seed: passed to `keras.utils.set_random_seed` before building and before fitting.
        epochs: override the pipeline's epochs (the determinism check replays one); a
            pipeline's own `train` function decides its epochs itself, so it is not overridden,
            but with `epochs=1` it runs until the first epoch of its first fit ends.
    """
    start = time.perf_counter()
    timings = Timings()
    with timings.timed(phases.READ_DATA):
        data = read_data(pipeline, seed)
        x_infer = pipeline.infer_inputs(data[0].images)
    with timings.timed(phases.BUILD_MODEL):
        model = build(pipeline, seed)
    weights = tuple(model.weights)
    run = _run_before_fit(
        pipeline,
        seed,
        model,
        data,
        x_infer=x_infer,
        weights=weights,
        trainable=frozenset(id(v) for v in model.trainable_weights),
        initial=weight_values(weights),
        timings=timings,
    )
    before_fit = "the model on the training inputs (a training-mode pass before fit)"
    with timings.timed(phases.INITIAL_LOSS), pipeline_step(pipeline, before_fit, compile_mistake_of(model)):
        run.initial_logs = initial_metrics(model, run.x_train, run.y_train, pipeline.batch_size)
        run.initial_loss = float(run.initial_logs["loss"])
    # The state `replay` restores; a train function recompiles as it goes, so it is replayed afresh.
    run.start_state = None if pipeline.train is not None else _state_before_fit(model, like=run.initial)
    with timings.timed_fit():
        _fit(run, epochs)
    if pipeline.after_fit is not None:
        with timings.timed(phases.AFTER_FIT), pipeline_step(pipeline, "after_fit"):
            pipeline.after_fit(model, run.x_train)
    run.seconds = timings.total = time.perf_counter() - start
    return run


def replay(run: TrainingRun, epochs: int | None = None) -> TrainingRun:
    """Train the run's pipeline again from its seed, reusing the run's traced training step.

    The data is read and preprocessed again and the model built again (the checks' shared
    untrained build, `builds.fresh_build`), but `fit` runs on the run's own model, given the
    new build's variables (weights, BN statistics, random-generator states) and the optimizer
    state fit started from: tracing a training step costs more than the steps of a tiny dataset.
    The model gets its end state back afterwards. Where that cannot be done (an optimizer that
    builds only inside fit, a new build with other variables), this is a fresh `train`.

    On Keras 3 with TensorFlow the replay first seeds without clearing TensorFlow's kernel
    cache (`compat.set_random_seed(keep_compiled=True)`): `tf.random.set_seed` would drop the
    traced step's instantiated kernels, and instantiating and optimizing them again costs
    seconds for a Keras application, more than the epoch. That replay is kept only where it
    reproduces the run bitwise (`_reproduces`); a difference could be the state a cached
    stateful random kernel kept, so it is then replayed again, seeded in full as `train` seeds.
    """
    if run.start_state is None:  # also a pipeline's own train function: it recompiles as it goes
        return train(run.pipeline, run.seed, epochs)
    seconds = 0.0
    if compat.keeps_compiled_functions():
        again = _replay_on_model(run, epochs, keep_compiled=True)
        if again is None:
            return train(run.pipeline, run.seed, epochs)
        if _reproduces(run, again, epochs):
            return again
        seconds = again.seconds  # the check's own time is both replays'
        del again  # its snapshots need not live through the second replay
    again = _replay_on_model(run, epochs, keep_compiled=False)
    if again is None:
        return train(run.pipeline, run.seed, epochs)
    again.seconds += seconds
    return again


def _reproduces(run: TrainingRun, again: TrainingRun, epochs: int | None) -> bool:
    """Whether a replay ended bitwise where the run did, at the point the determinism check compares."""
    if epochs == 1 and run.after_first_epoch is not None:
        reference, logs, replay_logs = run.after_first_epoch, run.first_epoch_logs, again.first_epoch_logs
    else:
        reference, logs = run.final, {k: v[-1] for k, v in (run.history.history if run.history else {}).items() if v}
        replay_logs = {k: v[-1] for k, v in (again.history.history if again.history else {}).items() if v}
    return (
        len(reference) == len(again.final)
        and all(_same_bytes(a, b) for a, b in zip(reference, again.final))
        and logs.keys() == replay_logs.keys()
        and all(_same_bytes(np.float64(logs[k]), np.float64(replay_logs[k])) for k in logs)
    )


def _same_bytes(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _replay_on_model(run: TrainingRun, epochs: int | None, keep_compiled: bool) -> TrainingRun | None:
    """`replay` on the run's own model; None where the new build's variables do not fit it."""
    from pipeline_checks.model.state import VariableSnapshot

    pipeline, seed, model = run.pipeline, run.seed, run.model
    # The shared untrained build, seeded as `build` seeds, except for the second replay on Keras 3
    # with TensorFlow: it builds again in a full seed's wake, in case stateful kernels made the first
    # differ, and replaces the shared build (which it equals), so that two are not held at once.
    second_try = not keep_compiled and compat.keeps_compiled_functions()
    if second_try:
        forget_fresh_build(pipeline, seed)
    release_freed_memory()  # before snapshotting every variable and replaying
    start = time.perf_counter()
    data = read_data(pipeline, seed, keep_compiled=keep_compiled)
    rebuilt = rebuild_fresh_build(pipeline, seed) if second_try else fresh_build(pipeline, seed)
    initial_of = _by_variable(run.weights, run.initial)
    rebuilt_state = weight_values(rebuilt.variables, tuple(initial_of.get(id(v)) for v in model.variables))
    by_id = _by_variable(rebuilt.variables, rebuilt_state)  # one copy of each weight, not two
    initial = tuple(by_id[id(w)] if id(w) in by_id else compat.to_numpy(w) for w in rebuilt.weights)
    if [v.shape for v in rebuilt_state] != [tuple(v.shape) for v in model.variables]:
        return None
    again = _run_before_fit(
        pipeline,
        seed,
        model,
        data,
        x_infer=run.x_infer,
        weights=run.weights,
        trainable=run.trainable,
        initial=initial,
        initial_loss=run.initial_loss,
        initial_logs=run.initial_logs,
        replays=run,
    )
    # The run's end: its weights are the final snapshot's arrays; the optimizer's slots wait on disk.
    end_state = VariableSnapshot.of(run.start_state.variables, like=_by_variable(run.weights, run.final), on_disk=True)
    try:
        run.start_state.restore()
        for variable, value in zip(model.variables, rebuilt_state):
            variable.assign(value)
        _fit(again, epochs, keep_compiled=keep_compiled)
    finally:
        end_state.restore()
        model.history = run.history
    again.seconds = time.perf_counter() - start
    return again


def _run_before_fit(pipeline: Pipeline, seed: int, model, data: tuple, **recorded) -> TrainingRun:
    """A run of `model` on the raw data, training inputs and targets `read_data` gave, before its fit."""
    raw, x_train, y_train = data
    return TrainingRun(pipeline=pipeline, seed=seed, model=model, raw=raw, x_train=x_train, y_train=y_train, **recorded)


def read_data(pipeline: Pipeline, seed: int, keep_compiled: bool = False) -> tuple:
    """Raw data, training inputs and targets; seeded first, as data and preprocessing may draw from NumPy.

    `keep_compiled`: seed without clearing TensorFlow's kernel cache (`compat.set_random_seed`), for `replay`.
    """
    compat.set_random_seed(seed, keep_compiled=keep_compiled)
    restart_random_layers(pipeline)
    raw = pipeline.raw_data()
    return (raw, *pipeline.training_pairs(raw))


def restart_random_layers(pipeline: Pipeline) -> list[str]:
    """Restart the Keras random layers that the pipeline's own training functions (a data function,
    train_dataset, preprocess_train, train) reach without building them, as each run starts them."""
    data = pipeline.data if callable(pipeline.data) else None
    return restart_outside_layers((data, pipeline.train_dataset, pipeline.preprocess_train, pipeline.train))


def _fit(run: TrainingRun, epochs: int | None, keep_compiled: bool = False) -> None:
    """Fit the run's model from the seed, recording into the run; `epochs` overrides the pipeline's.

    The data is the pipeline's own (arrays, or the dataset its source builds from the seed);
    the pipeline's callbacks run before the recording callback. With the pipeline's own `train`
    function, that function trains instead, in stages (`_train_in_stages`). `keep_compiled`: as for `read_data`.
    """
    compat.set_random_seed(run.seed, keep_compiled=keep_compiled)
    restart_random_layers(run.pipeline)
    arguments = run.pipeline.fit_arguments(run.x_train, run.y_train, run.seed)
    if run.pipeline.train is not None:
        _train_in_stages(run, arguments, first_epoch_only=epochs == 1)
        return
    if epochs is not None:
        arguments["epochs"] = epochs
    arguments["callbacks"] = [*arguments.get("callbacks", ()), recording_callback(run)]
    stage = Stage(1, "fit 1", run.trainable, run.initial)
    with pipeline_step(run.pipeline, "fit", compile_mistake_of(run.model)):
        run.history = run.model.fit(verbose=0, **arguments)
    stage.end, stage.history, stage.steps = run.final, run.history, len(run.batch_losses)
    run.stages = [stage]


class _FirstEpochDone(BaseException):
    """Ends a train function after its first fit's first epoch; a BaseException, so neither the
    function's own `except Exception` nor `pipeline_step` takes it for an error."""


def _train_in_stages(run: TrainingRun, arguments: dict, first_epoch_only: bool = False) -> None:
    """Call the pipeline's `train(model, data)`, recording each `model.fit` it makes as a stage.

    `model.fit` is replaced on the model instance while `train` runs, and put back after,
    also when it raises: each call gets the recording callback after its own callbacks, runs silent,
    and is recorded with the trainable weights and the weights at its start and end. A
    `train` that calls no fit is one "custom loop" stage, whose trainable weights are the
    model's when it returns (a loop freezes layers before it trains). The run's `history` is the last
    stage's, `initial` the first stage's start, `trainable` every stage's trainable weights.
    """
    model, pipeline = run.model, run.pipeline
    data = (arguments["x"], arguments["y"]) if "y" in arguments else arguments["x"]
    validation = validation_argument(pipeline.train, arguments.get("validation_data"))
    given, by_keyword = ((data, *validation), {}) if isinstance(validation, tuple) else ((data,), validation)
    start = run.initial
    original = model.fit
    signature = inspect.signature(original)

    def fit(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["callbacks"] = [*(bound.arguments.get("callbacks") or ()), recording_callback(run)]
        bound.arguments["verbose"] = 0
        if first_epoch_only:  # fit's `epochs` is the index it ends at: one past its initial_epoch
            bound.arguments["epochs"] = int(bound.arguments.get("initial_epoch") or 0) + 1
        stage = Stage(
            len(run.stages) + 1,
            f"fit {len(run.stages) + 1}",
            frozenset(id(v) for v in model.trainable_weights),
            weight_values(run.weights, run.stages[-1].end if run.stages else run.initial),
        )
        steps = len(run.batch_losses)
        run.stages.append(stage)
        history = original(*bound.args, **bound.kwargs)
        stage.end = run.final  # the recording callback's snapshot at the fit's end
        stage.history, stage.steps = history, len(run.batch_losses) - steps
        stage.inputs = bound.arguments.get("x")
        if first_epoch_only:
            raise _FirstEpochDone
        return history

    run.stages = []
    had_own_fit = "fit" in vars(model)
    model.fit = fit
    try:
        with pipeline_step(pipeline, "train", compile_mistake_of(model)):
            pipeline.train(model, *given, **by_keyword)
    except _FirstEpochDone:
        pass
    finally:
        if had_own_fit:
            model.fit = original
        else:
            del model.fit
    run.final = weight_values(run.weights, run.stages[-1].end if run.stages else start)
    if not run.stages:  # its frozen set: what the model says it trains once the loop has set it up
        run.stages = [Stage(1, CUSTOM_LOOP, frozenset(id(v) for v in model.trainable_weights), start, run.final)]
    run.history = run.stages[-1].history
    run.initial = run.stages[0].start
    run.trainable = frozenset().union(*(stage.trainable for stage in run.stages))


def validation_argument(train, validation_data) -> dict[str, Any] | tuple:
    """How a train function takes the validation data: a parameter named `validation_data` by
    keyword, a required third parameter by position, else not at all (`train(model, data)`; a third
    parameter with a default, `recompile=True`, is the function's own)."""
    try:
        parameters = list(inspect.signature(train).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: call it as documented, with two
        return ()
    if any(p.name == "validation_data" and p.kind != p.POSITIONAL_ONLY for p in parameters):
        return {"validation_data": validation_data}
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (validation_data,) if len(positional) >= 3 and positional[2].default is positional[2].empty else ()


def _state_before_fit(model, like: tuple):
    """Every variable of the model, its optimizer and its random generators, optimizer built first;
    None if it cannot be.

    `like`: the run's initial weights, whose arrays the snapshot shares where a weight did not move since.
    """
    from pipeline_checks.model.state import VariableSnapshot

    optimizer = model.optimizer
    try:
        compat.build_optimizer(optimizer, model.trainable_variables, model)
    except Exception:  # an optimizer that builds only inside fit: replays train afresh
        return None
    # Keras 2's augmentation layers draw from generators outside model.variables: a replay that
    # did not restore them would continue their streams and differ from a fresh process.
    variables = [*model.variables, *compat.optimizer_variables(optimizer), *compat.random_generator_states(model)]
    return VariableSnapshot.of(variables, like=_by_variable(model.weights, like))


_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# pipeline -> seed -> the PipelineRunError its run raised: the pipeline's own code failed, and
# would fail again in each check that asked, after training again (8 trainings, 34 s against 9.6 s).
_FAILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shared_run(pipeline: Pipeline, seed: int = 0) -> TrainingRun:
    """The run of `pipeline` from `seed`, trained once and then reused while the pipeline lives.

    A run whose pipeline code raised (`PipelineRunError`) is remembered too: each later call
    raises the same error at once, saying so, until `forget_shared_runs`.
    """
    if getattr(pipeline, "whole", None) is not None:  # one output of a model with several
        return _output_run(pipeline, seed, shared_run(pipeline.whole, seed))
    failure = failed_shared_run(pipeline, seed)
    if failure is not None:
        raise PipelineRunError(f"{failure}\n{SAME_FAILURE}") from failure.__cause__
    runs = _SHARED.setdefault(pipeline, {})
    if seed not in runs:
        try:
            runs[seed] = train(pipeline, seed)
        except PipelineRunError as error:
            _FAILED.setdefault(pipeline, {})[seed] = error
            raise
    return runs[seed]


SAME_FAILURE = "(the same failure as the run's first try: a failed run is remembered, not trained again)"


def _output_run(view, seed: int, whole: TrainingRun) -> TrainingRun:
    """The shared run of one output's view: the whole run seen through it, made once."""
    from pipeline_checks.run.output_runs import output_run

    runs = _SHARED.setdefault(view, {})
    if seed not in runs or runs[seed].whole is not whole:
        runs[seed] = output_run(whole, view)
    return runs[seed]


def failed_shared_run(pipeline: Pipeline, seed: int = 0) -> PipelineRunError | None:
    """The error the shared run of `pipeline` from `seed` raised, if it was tried and failed; else None."""
    if getattr(pipeline, "whole", None) is not None:
        return failed_shared_run(pipeline.whole, seed)
    return _FAILED.get(pipeline, {}).get(seed)


def trained_shared_run(pipeline: Pipeline, seed: int = 0) -> TrainingRun | None:
    """The shared run of `pipeline` from `seed` if it exists already, else None; trains nothing."""
    if getattr(pipeline, "whole", None) is not None:
        whole = trained_shared_run(pipeline.whole, seed)
        return None if whole is None else _output_run(pipeline, seed, whole)
    return _SHARED.get(pipeline, {}).get(seed)


def share_run(run: TrainingRun) -> None:
    """Make `run` the shared run of its pipeline and seed, e.g. a fit recorded by `Recorder`."""
    _SHARED.setdefault(run.pipeline, {})[run.seed] = run


def forget_shared_runs(pipeline: Pipeline | None = None) -> None:
    """Drop the shared runs of `pipeline`, or of every pipeline, their models, the failed runs
    remembered and the shared untrained builds (`builds.fresh_build`).

    A run refers to its pipeline, so runs live until forgotten: forget them when done,
    e.g. at the end of a test session.
    """
    forget_fresh_builds(pipeline)
    if pipeline is None:
        _SHARED.clear()
        _FAILED.clear()
    else:
        _SHARED.pop(pipeline, None)
        _FAILED.pop(pipeline, None)
    release_freed_memory()


def _by_variable(variables, values) -> dict:
    """`id(variable)` -> its value in a snapshot taken of `variables`."""
    return {id(v): value for v, value in zip(variables, values)}
