"""Check: two training runs from the same seed give the same weights and metrics.

Only the first epoch is replayed and compared with the shared run's snapshot after its
first epoch: one extra epoch, not a second full run. By default any difference fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks._validation import check_boolean, check_number
from pipeline_checks.checks.family import OWN_FIT, family
from pipeline_checks.model import compat, devices
from pipeline_checks.model.layers import walk_layers
from pipeline_checks.model.random_layers import random_layers_reached_by
from pipeline_checks.results.check_result import CheckResult, passed
from pipeline_checks.results.verdict import Finding, verdict
from pipeline_checks.run.training import TrainingRun, restart_random_layers, shared_run
from pipeline_checks.run.training import replay as replay_of

NAME = "determinism"
DETERMINISTIC_KERNELS = {
    "tensorflow": "call tf.config.experimental.enable_op_determinism() before training, or raise tolerance",
    "jax": "set XLA_FLAGS=--xla_gpu_deterministic_ops=true, or raise tolerance",
    "torch": "call torch.use_deterministic_algorithms(True), or raise tolerance",
}


NO_FIT_METRICS = "fit's metrics do not exist for a custom loop"
KERNEL_NOISE = 1e-5  # relative first-step loss difference that float reordering can explain


@family(NAME, OWN_FIT)
def check_determinism(pipeline, seed: int = 0, tolerance: float = 0.0, allow_kernel_noise: bool = True) -> CheckResult:
    """Check that training twice from the same seed gives the same weights and metrics.

    Replays the first epoch of the shared run (`training_run.replay`: a fresh build's
    variables, trained by the shared run's traced step) and compares its weights and logged
    metrics with the shared run's after its first epoch.
    A difference means randomness the seed does not reach: augmentation or a data loader
    drawing from an unseeded generator, or a random op in the model. The message says
    where it enters: the raw data, `preprocess_train`, the initial weights or the
    training steps.

    The replay overrides the pipeline's epochs with 1 and runs its callbacks again; the
    result's `overrides` number says so. Data given as a dataset object that reshuffles on
    each pass cannot be replayed in one process: the check then says it did not measure
    (`measured=False`) and how to declare the data so that it can.

    A pipeline with its own `train` function is replayed until the first epoch of its first
    fit ends, where every stage fits the same data object (what the seed must reach is all in
    that epoch); otherwise it is trained again in full from the seed and the end weights (and
    the last stage's metrics) are compared; after a custom loop, which logs no metrics, the
    weights alone.

    Args:
        pipeline: the `Pipeline`.
        seed: the seed both runs start from.
        tolerance: the largest relative difference allowed, per variable
            (max |a - b| / max |b|) and per metric. 0 (default) asks for bitwise-identical
            runs, which TensorFlow gives on CPU (and JAX on CPU and GPU); where GPU kernels
            are not deterministic, enable deterministic ops before training, or allow e.g. 1e-3.
        allow_kernel_noise: pass, with a note, when the two runs read the same data, make the
            same inputs and initial weights and compute the same first-step loss (to 1e-5),
            and differ only after backward passes: that is a kernel summing in another order
            from run to run (oneDNN's multithreaded convolution gradients on CPU, cuDNN on
            GPU), which Adam's first steps amplify, not randomness the seed misses. False
            fails on it too.

    Returns:
        A `CheckResult`; its numbers hold the variables compared and differing, the largest
        difference and where, and the replay's seconds.

    Example:
        >>> check_determinism(pipeline, seed=0).raise_if_failed()
    """
    check_number("tolerance", tolerance, "a non-negative number", low=0)
    check_boolean("allow_kernel_noise", allow_kernel_noise)
    source = pipeline.source()
    if source is not None and not source.same_on_every_pass(seed):
        return passed(NAME, pipeline, NOT_REPLAYABLE.format(kind=source.kind), measured=False)
    run = shared_run(pipeline, seed)
    if pipeline.train is not None and _first_epoch_shows(run):
        replay = replay_of(run, epochs=1)  # the train function, until its first fit's first epoch ends
        stages = len(run.stages)
        later = f" (of {stages} stages, all trained on the same data)" if stages > 1 else ""
        when, reference, replayed = f"after the first epoch of fit 1{later}", run.after_first_epoch, replay.final
        logs, replay_logs = run.first_epoch_logs, replay.first_epoch_logs
    elif pipeline.train is not None:  # its own train function decides the epochs: replay all of it
        replay = replay_of(run)
        stages = len(run.stages)
        when = (
            "after the custom loop"
            if run.custom_loop
            else f"after the train function ({stages} stage{'s' if stages != 1 else ''})"
        )
        reference, replayed = run.final, replay.final
        logs, replay_logs = _last_logs(run), _last_logs(replay)
    elif run.after_first_epoch is not None:
        replay = replay_of(run, epochs=1)
        when, reference, replayed = "after one epoch", run.after_first_epoch, replay.final
        logs, replay_logs = run.first_epoch_logs, replay.first_epoch_logs
    else:  # fit never reported epoch 0 (fit_kwargs start at a later initial_epoch): replay all of it.
        replay = replay_of(run)
        when, reference, replayed = "after fit", run.final, replay.final
        logs, replay_logs = _last_logs(run), _last_logs(replay)
    comparison = _compare(run, reference, replayed, logs, replay_logs)
    overrides = _overrides(pipeline, when)
    numbers = dict(
        variables=len(reference),
        variables_differing=len(comparison.variables),
        largest_difference=comparison.largest,
        largest_difference_at=comparison.largest_at,
        metrics_differing=len(comparison.metrics),
        tolerance=tolerance,
        replay_seconds=round(replay.seconds, 2),
        kernel_noise=False,
        overrides=overrides,
    )
    if comparison.largest <= tolerance and comparison.structure is None:
        agree = "bitwise-identical" if comparison.largest == 0 else f"within {tolerance:g} relative"
        compared = "weights" if run.custom_loop else "weights ({n} variables) and metrics"
        return passed(
            NAME,
            pipeline,
            f"two runs from seed {seed} gave {agree} {compared.format(n=len(reference))} {when}"
            + (f" ({len(reference)} variables; {NO_FIT_METRICS})" if run.custom_loop else ""),
            f"  The replay {overrides}." if overrides else "",
            **numbers,
        )
    summary = _summary(seed, when, comparison, tolerance)
    numbers["kernel_noise"] = bool(
        allow_kernel_noise and comparison.structure is None and _only_kernel_noise(pipeline, run, replay)
    )
    if numbers["kernel_noise"]:
        finding = Finding(
            summary,
            "Not a seeding bug: the two runs read the same data, make the same inputs and initial weights and "
            "compute the same first-step loss",
            cause="kernels that sum in another order from run to run, after the backward passes.",
            fix=f"for bitwise-identical runs, {_deterministic_kernels('enable deterministic kernels')}.",
            failure=False,
        )
    else:
        cause, fix = _where_randomness_enters(pipeline, run, replay)
        finding = Finding(summary, _differing_variables(run, comparison), fix=fix, cause=cause)
    kernels_only = (
        f"two runs from seed {seed} read the same data and compute the same first-step loss; their weights "
        f"differ {when} by up to {comparison.largest:.3g} relative only through non-deterministic kernels"
    )
    return verdict(NAME, pipeline, [finding], kernels_only, **numbers)


def _last_logs(run: TrainingRun) -> dict:
    """The metrics fit logged for its last epoch; none after a custom loop."""
    if run.history is None:
        return {}
    return {name: values[-1] for name, values in run.history.history.items() if values}


@dataclass
class _Comparison:
    variables: list  # (path, relative difference) of the variables beyond zero difference
    metrics: list  # (name, shared run's value, replay's value)
    largest: float
    largest_at: str
    structure: str | None  # why the runs cannot be compared variable by variable


def _compare(run: TrainingRun, reference, replayed, logs, replay_logs) -> _Comparison:
    if len(reference) != len(replayed) or any(a.shape != b.shape for a, b in zip(reference, replayed)):
        return _Comparison(
            [],
            [],
            math.inf,
            "",
            f"build_model returned models with different variables "
            f"({len(reference)}: {_shapes(reference)}... vs {len(replayed)}: {_shapes(replayed)}...)",
        )
    variables = [
        (compat.variable_path(variable), difference)
        for variable, a, b in zip(run.weights, replayed, reference)
        if (difference := _relative_difference(a, b)) > 0
    ]
    metrics = [
        (name, logs.get(name, math.nan), replay_logs.get(name, math.nan))
        for name in sorted(set(logs) | set(replay_logs))
        if _relative_difference(np.float64(replay_logs.get(name, math.nan)), np.float64(logs.get(name, math.nan))) > 0
    ]
    differences = [d for _, d in variables] + [
        _relative_difference(np.float64(b), np.float64(a)) for _, a, b in metrics
    ]
    largest = max(differences, default=0.0)
    largest_at = max(variables, key=lambda item: item[1])[0] if variables else ""
    return _Comparison(variables, metrics, largest, largest_at, None)


def _relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: 0 for bitwise-equal arrays, inf where NaNs or infinities differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.tobytes() == b.tobytes():
        return 0.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    if np.array_equal(a, b, equal_nan=True):
        return 0.0  # -0.0 vs 0.0, or NaNs of different payloads
    difference = float(np.max(np.abs(a - b)))
    if not math.isfinite(difference):
        return math.inf
    return difference / max(float(np.max(np.abs(b))), 1e-12)


def _summary(seed: int, when: str, comparison: _Comparison, tolerance: float) -> str:
    if comparison.structure is not None:
        return f"two runs from seed {seed} built different models: {comparison.structure}"
    parts = [f"{len(comparison.variables)} variables differ"]
    if comparison.variables:
        parts[0] += f" (largest relative difference {comparison.largest:.3g} in {comparison.largest_at})"
    if comparison.metrics:
        parts.append(", ".join(f"{name} {a:.6g} vs {b:.6g}" for name, a, b in comparison.metrics[:3]))
    return f"two runs from seed {seed} differ {when}: " + "; ".join(parts) + f" (tolerance {tolerance:g})"


def _shapes(values) -> str:
    return ", ".join(str(v.shape) for v in values[:4])


def _differing_variables(run: TrainingRun, comparison: _Comparison) -> str:
    if not comparison.variables:
        return ""
    worst = sorted(comparison.variables, key=lambda item: item[1], reverse=True)[:3]
    return f"differing variables: {len(comparison.variables)} of {len(run.weights)}; largest: " + ", ".join(
        f"{path} ({difference:.3g})" for path, difference in worst
    )


NOT_REPLAYABLE = (
    "not measured: data is a {kind} object that yields its batches in another order on each pass (a "
    "reshuffling .shuffle), so a second fit in this process trains on other batches whatever the seed; declare "
    "data as a function that builds the dataset, and each run builds it anew from the seed"
)


def _first_epoch_shows(run: TrainingRun) -> bool:
    """Whether the first epoch of a train function's first fit shows what its whole run would: every
    stage is a fit on the same data object, so what the seed must reach (data order, augmentation,
    initial weights, the model's random layers) is all in that epoch; else the function is replayed
    in full."""
    first = run.stages[0] if run.stages else None
    if first is None or first.custom or run.after_first_epoch is None:
        return False
    return all(stage.inputs is first.inputs for stage in run.stages)


def _overrides(pipeline, when: str) -> str:
    """What the replay changes in the pipeline's own fit arguments, to say so."""
    if when.startswith("after the first epoch of fit 1"):
        return "stops the train function when its first fit's first epoch ends"
    if when != "after one epoch":
        return ""
    said = f"overrides fit_kwargs epochs={pipeline.epochs} with 1"
    callbacks = pipeline.fit_kwargs.get("callbacks") or ()
    if callbacks:
        said += f", and runs the pipeline's {len(callbacks)} callback{'s' if len(callbacks) != 1 else ''} again"
    return said


def _where_randomness_enters(pipeline, run: TrainingRun, replay: TrainingRun) -> tuple[str, str]:
    """The first stage whose output differs between two same-seed runs, and its fix."""
    if not _same_arrays(run.raw.images, replay.raw.images) or not _same_arrays(run.raw.labels, replay.raw.labels):
        moved = _images_moved(run.raw.images, replay.raw.images)
        return (
            f"`data` returned different images or another order on two reads ({moved}), e.g. a file "
            "list shuffled by an unseeded generator; fit's batches then differ.",
            "read the data in a fixed order (sort the file names) and leave shuffling to fit(shuffle=True), "
            "which keras.utils.set_random_seed seeds; or shuffle with np.random.default_rng(seed).",
        )
    first, second = _train_inputs_of_a_run(pipeline, run), _train_inputs_of_a_run(pipeline, run)
    if not _same_arrays(first, second):
        return _training_path_differs(pipeline, _inputs_changed(first, second))
    initial = [
        compat.variable_path(v) for v, a, b in zip(run.weights, run.initial, replay.initial) if not _same_arrays(a, b)
    ]
    if initial:
        return (
            f"build_model gave different initial weights from the same seed ({len(initial)} variables, e.g. "
            f"{', '.join(initial[:3])}): an initializer or weight source draws from a generator "
            "the seed does not reach.",
            "use Keras initializers, which keras.utils.set_random_seed seeds, or give them seed=...; load any "
            "weights from files, not from a random source.",
        )
    custom = [
        f"{found.path} ({type(found.layer).__name__})"
        for found in walk_layers(run.model)
        if not compat.from_keras(type(found.layer))
    ]
    first_step_differs = (
        run.after_first_step is not None
        and replay.after_first_step is not None
        and not all(_same_arrays(a, b) for a, b in zip(run.after_first_step, replay.after_first_step))
    )
    step = "from the first training step on" if first_step_differs else "from a later step on (the first step agrees)"
    suspects = f" Custom layers, the likely place: {listed(custom)}." if custom else ""
    kernels = " On GPU, non-deterministic kernels also give small differences." if devices.gpu_available() else ""
    return (
        f"same raw data, same inputs and same initial weights, yet the runs differ {step}: a random op in the "
        "model or the training step draws from a generator the seed does not reach (e.g. one seeded from the "
        f"clock, tf.random.Generator.from_non_deterministic_state(), NumPy in a callback).{suspects}{kernels}",
        "make the layer's keras.random.SeedGenerator in __init__ with a fixed seed, or with none: then "
        "keras.utils.set_random_seed's seed picks it, as for keras.layers.GaussianNoise"
        + (f"; for GPU kernels, {_deterministic_kernels('raise tolerance')}." if kernels else "."),
    )


def _deterministic_kernels(otherwise: str) -> str:
    """How to make the backend's kernels deterministic."""
    return DETERMINISTIC_KERNELS.get(compat.backend(), otherwise)


def _only_kernel_noise(pipeline, run: TrainingRun, replay: TrainingRun) -> bool:
    """Same data, inputs, initial weights and first-step loss: only backward kernels can differ."""
    if not (run.batch_losses and replay.batch_losses):
        return False
    first, again = run.batch_losses[0], replay.batch_losses[0]
    return (
        _same_arrays(run.raw.images, replay.raw.images)
        and _same_arrays(run.raw.labels, replay.raw.labels)
        and _same_arrays(_train_inputs_of_a_run(pipeline, run), _train_inputs_of_a_run(pipeline, run))
        and all(_same_arrays(a, b) for a, b in zip(run.initial, replay.initial))
        and math.isfinite(first)
        and abs(first - again) <= KERNEL_NOISE * max(abs(first), 1e-12)
    )


def _same_arrays(a, b) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):  # targets per output
        both = isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
        return both and all(_same_arrays(a[k], b[k]) for k in a)
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _images_moved(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"{len(a)} images, then {len(b)}"
    moved = int(np.sum(np.any((a != b).reshape(len(a), -1), axis=1)))
    return f"{moved} of {len(a)} positions hold another image"


def _inputs_changed(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shapes {a.shape} and {b.shape}"
    changed = int(np.sum(np.any((a != b).reshape(len(a), -1), axis=1)))
    largest = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return f"{changed} of {len(a)} images differ, by up to {largest:.3g}"


def _train_inputs_of_a_run(pipeline, run: TrainingRun) -> np.ndarray:
    """The training path's inputs as a run makes them, its outside random layers restarted first."""
    restart_random_layers(pipeline)
    return pipeline.train_inputs(run.raw.images)


def _training_path_differs(pipeline, changed: str) -> tuple[str, str]:
    """The training path gave other inputs on a second call: Keras random layers it reaches but does
    not build (their state carries over between runs), else a generator the seed does not reach."""
    path = pipeline.path_names()[0]
    function = pipeline.train_dataset if pipeline.train_dataset is not None else pipeline.preprocess_train
    kept = random_layers_reached_by(function)
    differs = f"{path} returned different inputs for the same images on two calls ({changed})"
    if kept:
        return (
            f"{differs}: it calls Keras random layers built once, outside it ({listed(kept)}), which the "
            "checks restart before each run as a fresh process would. Their seed generator is one variable "
            "that every call advances, so a parallel map (num_parallel_calls) hands its draws to the images in "
            "another order from run to run (deterministic=True keeps the output order, not the draws').",
            f"map the random layers without num_parallel_calls (a sequential map draws in order; keep the "
            f"parallelism for decoding and resizing), or move them into the model; and build them inside {path} "
            "or give them seed=..., so that every process starts them alike.",
        )
    return (
        f"{differs}: augmentation drawing from a generator the seed does not reach, e.g. "
        "np.random.default_rng() without a seed.",
        "draw augmentation from np.random.default_rng(seed) with a seed fixed in the pipeline, or move it "
        "into the model as Keras random layers (keras.layers.RandomFlip, ...), which keras.utils.set_random_seed "
        "seeds.",
    )
