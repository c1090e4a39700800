"""Check: the trained model survives saving and loading, as a `.keras` model and as a weights file.

Deployment loads what training saved: a `.keras` model rebuilds the layers from their
configs (custom layers must be registered and `get_config` complete), a `.weights.h5`
file fills a model from `build_model`. Either way the loaded model must predict what the
trained one predicts, with the same weights and BatchNormalization statistics. How the
files are written: `pipeline_checks.model.saving`.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pipeline_checks._validation import check_number
from pipeline_checks.batchnorm.statistics import moving_statistics
from pipeline_checks.checks import save_load_findings as findings
from pipeline_checks.checks.family import OWN_FIT, family
from pipeline_checks.model import compat
from pipeline_checks.model.forward import share_compiled
from pipeline_checks.model.inference_outputs import inference_outputs
from pipeline_checks.model.layers import find_batchnorm
from pipeline_checks.model.saving import (
    Saved,
    move_every_weight,
    save_once,
    unregistered_classes,
    weights_read_from_disk,
)
from pipeline_checks.pipelines.input_kind import examples_word
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import Finding, verdict
from pipeline_checks.run.builds import take_fresh_build
from pipeline_checks.run.memory import release_freed_memory
from pipeline_checks.run.training import shared_run

NAME = "save_load"
DEFAULT_TOLERANCE = 1e-5


@family(NAME, OWN_FIT)
def check_save_load(
    pipeline, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE, directory=None, custom_objects=None
) -> CheckResult:
    """Check that the trained model, saved and loaded back, predicts the same.

    Saves the shared run's model (after `after_fit`) with `model.save` in the `.keras`
    format (unzipped, a folder, where Keras can: the files the archive holds) and loads it
    with `keras.saving.load_model(path, safe_mode=True)`; loads its weights file (the
    folder's `model.weights.h5`, else one written by `save_weights`) into the pipeline's
    untrained model from `build_model`, every weight first moved by 1 so that agreement is
    no accident. Each loaded model must give the same predictions on the inference inputs,
    and the same weights and BatchNormalization moving statistics (nested models included),
    bit for bit. A file that does not save or load fails the check with the reason, e.g. a
    custom layer that is not registered.

    Args:
        pipeline: the `Pipeline`.
        seed: the seed of the shared training run.
        tolerance: the largest difference allowed between predictions, relative to
            max(1, largest prediction); weights must match exactly.
        directory: an existing folder to write the files in (inside a temporary folder,
            removed afterwards); default: the system's temporary folder.
        custom_objects: passed to `load_model`, as deployment code passes it.

    Returns:
        A `CheckResult`; its numbers hold each format's largest prediction difference and
        differing weights.

    Example:
        >>> check_save_load(pipeline, custom_objects={"Scale": Scale}).raise_if_failed()
    """
    check_number("tolerance", tolerance, "a non-negative number", low=0)
    if directory is not None and not os.path.isdir(directory):
        raise ValueError(f"directory must be an existing folder; received: directory={directory!r}")
    if custom_objects is not None and (
        not isinstance(custom_objects, Mapping) or not all(isinstance(key, str) for key in custom_objects)
    ):
        raise TypeError(
            "custom_objects must be a dict of names to classes or functions; "
            f"received: custom_objects={custom_objects!r}"
        )
    keras = compat.keras()
    run = shared_run(pipeline, seed)
    model = run.model
    reference = _State.of(model, run.x_infer, pipeline.batch_size)
    with tempfile.TemporaryDirectory(prefix="pipeline-checks-save-load-", dir=directory) as folder:
        saved = save_once(keras, model, folder)
        release_freed_memory(collect=False)  # saving's buffers (a .keras file's archive), before a model is loaded
        # The weights file first: it takes the checks' untrained build, which is freed before load_model builds another.
        weights_file = _round_trip(
            "weights file", reference, run, tolerance, lambda: _load_weights(pipeline, model, saved, seed, run.x_infer)
        )
        keras_file = _round_trip(
            saved.label, reference, run, tolerance, lambda: _load_keras(keras, model, saved, custom_objects)
        )
    formats = [keras_file, weights_file]
    numbers = {"tolerance": tolerance}
    for key, trip in zip(("keras", "weights"), formats):
        numbers[f"{key}_prediction_difference"] = trip.prediction_difference
        numbers[f"{key}_weights_differing"] = trip.weights_differing
    broken = any(trip.finding.failure for trip in formats)
    checked = (
        f"the {saved.label} and the weights file both load back to identical weights ({len(reference.weights)} "
        f"variables, {len(reference.batchnorm)} BatchNormalization layers) and predictions on {len(run.x_infer)} "
        f"{examples_word(run.x_infer)}s"
    )
    return verdict(NAME, pipeline, [trip.finding for trip in formats] if broken else [], checked, **numbers)


@dataclass
class _State:
    """What loading must preserve: weights (read from the model one at a time when compared, so
    that no copy of them all is held), BN statistics, predictions."""

    model: object
    paths: list
    weights: list  # the model's weight variables
    batchnorm: dict  # BN layer path -> (moving mean, moving variance)
    predictions: list  # one array per model output

    @classmethod
    def of(cls, model, x, batch_size: int) -> _State:
        return cls(
            model,
            [compat.variable_path(v) for v in model.weights],
            list(model.weights),
            {found.path: moving_statistics(found.layer) for found in find_batchnorm(model)},
            inference_outputs(model, x, batch_size),
        )


@dataclass(frozen=True)
class _RoundTrip:
    """One format saved and loaded back: its numbers and what was found."""

    finding: Finding  # not a failure where it loads back identical
    prediction_difference: float = 0.0
    weights_differing: int = 0


class _NotLoaded(Exception):
    """Saving or loading a format failed; `finding` says how and why."""

    def __init__(self, finding: Finding):
        super().__init__(finding.summary)
        self.finding = finding


def _round_trip(label: str, reference: _State, run, tolerance: float, load) -> _RoundTrip:
    release_freed_memory()  # what earlier checks and the other format freed, before a model is loaded
    try:
        loaded = load()
    except _NotLoaded as failure:
        return _RoundTrip(failure.finding)
    state = _State.of(loaded, run.x_infer, run.pipeline.batch_size)
    difference = _prediction_difference(reference.predictions, state.predictions)
    if len(state.weights) != len(reference.weights) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(state.weights, reference.weights)
    ):
        finding = findings.other_architecture(label, difference, tolerance, len(state.weights), len(reference.weights))
        return _RoundTrip(finding, difference)
    weights = [
        path
        for path, a, b in zip(reference.paths, reference.weights, state.weights)
        if not _identical(compat.to_numpy(a), compat.to_numpy(b))
    ]
    batchnorm = [
        path
        for (path, (mean, variance)), (mean2, variance2) in zip(reference.batchnorm.items(), state.batchnorm.values())
        if not (_identical(mean, mean2) and _identical(variance, variance2))
    ]
    finding = findings.compared(label, difference, tolerance, weights, batchnorm, reference.model, loaded)
    return _RoundTrip(finding, difference, len(weights))


def _load_keras(keras, model, saved: Saved, custom_objects):
    if saved.error is not None:
        raise _NotLoaded(findings.not_saved_or_loaded(saved.label, "save", saved.error))
    try:
        with weights_read_from_disk():
            loaded = keras.saving.load_model(saved.path, custom_objects=custom_objects, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any failure to load is the finding
        unregistered = unregistered_classes(keras, model, custom_objects or {})
        raise _NotLoaded(findings.not_saved_or_loaded(saved.label, "load", error, unregistered)) from None
    share_compiled(loaded, model)
    return loaded


def _load_weights(pipeline, model, saved: Saved, seed: int, x):
    label, path = "weights file", saved.weights_path
    if not os.path.exists(path):  # model.save wrote a .keras file, or failed before its weights
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            model.save_weights(path)
        except Exception as error:  # noqa: BLE001
            raise _NotLoaded(findings.not_saved_or_loaded(label, "save", error)) from None
    fresh = take_fresh_build(pipeline, seed)  # the checks' shared untrained build, ours to change now
    try:
        if not fresh.built:
            fresh(x[:1], training=False)
        move_every_weight(fresh)
        with warnings.catch_warnings():
            # The fresh model's optimizer is unbuilt, so Keras skips the saved optimizer state: not our concern.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            fresh.load_weights(path)
    except Exception as error:  # noqa: BLE001
        raise _NotLoaded(findings.weights_not_loaded(label, error)) from None
    return fresh


def _prediction_difference(reference: list, loaded: list) -> float:
    if len(reference) != len(loaded) or any(a.shape != b.shape for a, b in zip(reference, loaded)):
        return math.inf
    worst = 0.0
    for a, b in zip(reference, loaded):
        a, b = a.astype(np.float64), b.astype(np.float64)
        difference = float(np.max(np.abs(a - b), initial=0.0))
        if not math.isfinite(difference):
            if np.array_equal(a, b, equal_nan=True):
                continue  # the same NaNs or infinities: the numerics check's business, not ours
            return math.inf
        worst = max(worst, difference / max(1.0, float(np.max(np.abs(a), initial=0.0))))
    return worst


def _identical(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
