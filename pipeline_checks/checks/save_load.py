"""Check: the trained model survives saving and loading, as a `.keras` model and as a weights file.

Deployment loads what training saved: a `.keras` model rebuilds the layers from their
configs (custom layers must be registered and `get_config` complete), a `.weights.h5`
file fills a model from `build_model`. Either way the loaded model must predict what the
trained one predicts, with the same weights and BatchNormalization statistics.

Where Keras can save the `.keras` format unzipped (`model.save(folder, zipped=False)`,
Keras 3.4 on), the check writes the model once: a folder with the archive's files (config,
metadata, `model.weights.h5`), which `load_model` loads, and whose weights file, written by
the same code as `save_weights`, `load_weights` loads. That skips zipping, unzipping and a
second copy of every weight and optimizer slot: half of the check's seconds for ResNet50.
Elsewhere it saves a `.keras` file and a `.weights.h5` file.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks._validation import check_number
from pipeline_checks.batchnorm.statistics import moving_statistics
from pipeline_checks.checks.family import OWN_FIT, family
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.model import compat
from pipeline_checks.model.forward import forward, share_compiled
from pipeline_checks.model.layers import find_batchnorm, walk_layers
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.run.builds import take_fresh_build
from pipeline_checks.run.memory import release_freed_memory
from pipeline_checks.run.training import shared_run

NAME = "save_load"
DEFAULT_TOLERANCE = 1e-5
REGISTER_FIX = (
    "decorate the class with @keras.saving.register_keras_serializable(package=...) where it is defined, "
    "and import that module before loading; or pass custom_objects={{'{name}': {name}}} to load_model "
    "(and to this check)."
)


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
    pipeline, seed = checked_pipeline(pipeline), checked_seed(seed)
    check_number("tolerance", tolerance, "a non-negative number", low=0)
    if directory is not None and not os.path.isdir(directory):
        raise ValueError(f"directory must be an existing folder; received: directory={directory!r}")
    if custom_objects is not None and (
        not isinstance(custom_objects, Mapping) or not all(isinstance(key, str) for key in custom_objects)
    ):
        raise TypeError(
            f"custom_objects must be a dict of names to classes or functions; received: custom_objects={custom_objects!r}"
        )
    keras = compat.keras()
    run = shared_run(pipeline, seed)
    model = run.model
    reference = _State.of(model, run.x_infer, pipeline.batch_size)
    with tempfile.TemporaryDirectory(prefix="pipeline-checks-save-load-", dir=directory) as folder:
        saved = _save(keras, model, folder)
        # The weights file first: it takes the checks' untrained build, which is freed before load_model builds another model.
        weights_file = _round_trip(
            "weights file", reference, run, lambda: _load_weights(pipeline, model, saved, seed, run.x_infer)
        )
        keras_file = _round_trip(saved.label, reference, run, lambda: _load_keras(keras, model, saved, custom_objects))
        formats = [keras_file, weights_file]
    numbers = {"tolerance": tolerance}
    for key, outcome in zip(("keras", "weights"), formats):
        numbers[f"{key}_prediction_difference"] = outcome.prediction_difference
        numbers[f"{key}_weights_differing"] = len(outcome.weights)
    broken = [outcome for outcome in formats if not outcome.ok(tolerance)]
    if not broken:
        return passed(
            NAME,
            pipeline,
            f"the {saved.label} and the weights file both load back to identical weights ({len(reference.weights)} "
            f"variables, {len(reference.batchnorm)} BatchNormalization layers) and predictions on {len(run.x_infer)} images",
            **numbers,
        )
    details = "\n".join(outcome.describe(tolerance) for outcome in formats)
    return failed(NAME, pipeline, "; ".join(outcome.headline(tolerance) for outcome in broken), details, **numbers)


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
            _predict(model, x, batch_size),
        )


@dataclass
class _Outcome:
    label: str
    error: str = ""  # why saving or loading failed
    cause: str = ""
    fix: str = ""
    prediction_difference: float = 0.0
    weights: list = field(default_factory=list)  # paths of weights that differ
    batchnorm: list = field(default_factory=list)  # paths of BN layers whose statistics differ
    structure: str = ""  # why weights cannot be compared one by one

    def ok(self, tolerance: float) -> bool:
        return (
            not (self.error or self.structure or self.weights or self.batchnorm)
            and self.prediction_difference <= tolerance
        )

    def headline(self, tolerance: float) -> str:
        if self.error:
            step, reason = self.error.split(": ", 1)
            return f"the {self.label} does not {step} ({reason})"
        parts = []
        if self.prediction_difference > tolerance:
            parts.append(f"predicts differently (largest difference {self.prediction_difference:.3g})")
        if self.structure:
            parts.append(self.structure)
        elif self.weights:
            parts.append(f"{len(self.weights)} weights differ")
        elif self.prediction_difference > tolerance:
            parts[-1] += " with every weight identical"
        return f"the model loaded from the {self.label} " + ", ".join(parts)

    def describe(self, tolerance: float) -> str:
        """Evidence, cause and fix; the summary already holds the headline."""
        if self.ok(tolerance):
            return f"{self.label}: loads back to identical weights and predictions."
        lines = [f"{self.label}:"]
        if self.weights:
            lines.append(f"  Weights that differ: {listed(self.weights)}.")
        if self.batchnorm:
            lines.append(f"  BatchNormalization moving statistics that differ: {', '.join(self.batchnorm[:3])}.")
        if self.cause:
            lines.append(f"  Likely cause: {self.cause}")
        if self.fix:
            lines.append(f"  Fix: {self.fix}")
        return "\n".join(lines)


def _round_trip(label: str, reference: _State, run, load) -> _Outcome:
    release_freed_memory()  # what earlier checks and the other format freed, before a model is loaded
    try:
        loaded = load()
    except _StepFailed as failure:
        return _Outcome(label, error=failure.error, cause=failure.cause, fix=failure.fix)
    state = _State.of(loaded, run.x_infer, run.pipeline.batch_size)
    outcome = _Outcome(label, prediction_difference=_prediction_difference(reference.predictions, state.predictions))
    if len(state.weights) != len(reference.weights) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(state.weights, reference.weights)
    ):
        outcome.structure = (
            f"it has {len(state.weights)} weights of other shapes, the trained model {len(reference.weights)}"
        )
        outcome.cause = "the loaded model's architecture differs: get_config or build_model builds other layers."
        outcome.fix = (
            "make get_config return every argument that shapes the layer; build the same model in build_model."
        )
        return outcome
    outcome.weights = [
        path
        for path, a, b in zip(reference.paths, reference.weights, state.weights)
        if not _identical(compat.to_numpy(a), compat.to_numpy(b))
    ]
    outcome.batchnorm = [
        path
        for (path, (mean, variance)), (mean2, variance2) in zip(reference.batchnorm.items(), state.batchnorm.values())
        if not (_identical(mean, mean2) and _identical(variance, variance2))
    ]
    if outcome.weights:
        outcome.cause = (
            "the file does not carry these values, or they are loaded into other variables (order of creation)."
        )
        outcome.fix = "create every variable in build() or __init__ in a fixed order, and save after after_fit."
    elif outcome.prediction_difference > 0:
        outcome.cause, outcome.fix = _state_outside_weights(reference.model, loaded)
    return outcome


class _StepFailed(Exception):
    def __init__(self, error: str, cause: str, fix: str):
        super().__init__(error)
        self.error, self.cause, self.fix = error, cause, fix


@dataclass
class _Saved:
    """Where `model.save` wrote the model, and where its weights file is (or goes)."""

    path: str  # a folder (the .keras format unzipped) or a .keras file
    label: str  # how results name it
    weights_path: str
    error: Exception | None = None  # why model.save failed


def _save(keras, model, folder: str) -> _Saved:
    """Save the model once with `model.save`: unzipped where Keras can, so that its weights file serves both formats."""
    unzipped = _saves_unzipped(keras)
    if unzipped:
        path = os.path.join(folder, "model")
        saved = _Saved(path, ".keras folder", os.path.join(path, "model.weights.h5"))
    else:
        saved = _Saved(os.path.join(folder, "model.keras"), ".keras file", os.path.join(folder, "model.weights.h5"))
    try:
        model.save(saved.path, **({"zipped": False} if unzipped else {}))
    except Exception as error:  # noqa: BLE001 - any failure to save is the finding, reported by _load_keras
        saved.error = error
        if unzipped and os.path.exists(saved.weights_path):
            os.remove(saved.weights_path)  # maybe half written: save_weights writes its own
    release_freed_memory(
        collect=False
    )  # saving's buffers (a .keras file's archive goes through memory), before a model is loaded
    return saved


def _saves_unzipped(keras) -> bool:
    """Whether `model.save` takes `zipped=False` (Keras 3.4 on): a folder with the archive's files, which load_model loads."""
    try:
        return "zipped" in inspect.signature(keras.saving.save_model).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def _load_keras(keras, model, saved: _Saved, custom_objects):
    if saved.error is not None:
        raise _StepFailed(f"save: {_first_sentence(saved.error)}", *_cause_of(saved.error))
    try:
        with _weights_read_from_disk():
            loaded = keras.saving.load_model(saved.path, custom_objects=custom_objects, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any failure to load is the finding
        unregistered = _unregistered_classes(keras, model, custom_objects or {})
        raise _StepFailed(f"load: {_first_sentence(error)}", *_cause_of(error, unregistered)) from None
    share_compiled(loaded, model)
    return loaded


@contextlib.contextmanager
def _weights_read_from_disk():
    """Make Keras 3's `load_model` extract a `.keras` file's weights to a file beside it and read them there.

    Where free memory allows, `load_model` reads the archive's whole weights file into memory
    first (`saving_lib.is_memory_sufficient`): the weights and the optimizer's slots once more
    (280 MB for ResNet50 with Adam) on top of the loaded model, at the gate's peak. Extracting
    is `load_model`'s own other path, taken on machines with less free memory; the weights and
    what is compared are the same. Keras 2 reads from disk already.
    """
    saving_lib = sys.modules.get("keras.src.saving.saving_lib")
    enough = getattr(saving_lib, "is_memory_sufficient", None)
    if enough is None:
        yield
        return
    saving_lib.is_memory_sufficient = lambda model: False
    try:
        yield
    finally:
        saving_lib.is_memory_sufficient = enough


def _unregistered_classes(keras, model, custom_objects) -> list[str]:
    """Custom layer classes load_model cannot find by name: not Keras' own, not registered,
    not in custom_objects. (Keras' error for them varies: tf_keras 2.21 raises "'str' object
    is not callable".)"""
    from pipeline_checks.model.layers import walk_layers

    registered_name = getattr(keras.saving, "get_registered_name", None) or keras.utils.get_registered_name
    names = []
    for found in walk_layers(model):
        cls = type(found.layer)
        if compat.from_keras(cls) or cls.__name__ in custom_objects:
            continue
        if ">" not in registered_name(cls):  # registered names read "package>Name"
            names.append(cls.__name__)
    return sorted(set(names))


def _load_weights(pipeline, model, saved: _Saved, seed: int, x):
    path = saved.weights_path
    if not os.path.exists(path):  # model.save wrote a .keras file, or failed before its weights
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            model.save_weights(path)
        except Exception as error:  # noqa: BLE001
            raise _StepFailed(f"save: {_first_sentence(error)}", *_cause_of(error)) from None
    fresh = take_fresh_build(pipeline, seed)  # the checks' shared untrained build, ours to change now
    try:
        if not fresh.built:
            fresh(x[:1], training=False)
        _move_every_weight(fresh)
        with warnings.catch_warnings():
            # The fresh model's optimizer is unbuilt, so Keras skips the saved optimizer state: not our concern.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            fresh.load_weights(path)
    except Exception as error:  # noqa: BLE001
        raise _StepFailed(
            f"load: {_first_sentence(error)}",
            "build_model builds a model whose variables do not match the saved ones.",
            "build the same architecture in build_model as the model trained; create variables in a fixed order.",
        ) from None
    return fresh


def _move_every_weight(model) -> None:
    """Add 1 to every weight, so that any value the file does not carry differs from the trained one
    (a frozen layer's weights would otherwise still equal the training run's, built from the same seed)."""
    for variable in model.weights:
        value = compat.to_numpy(variable)
        if value.dtype != bool:
            variable.assign(value + np.ones((), value.dtype))


# Keras 3: "Could not locate class 'X'"; Keras 2: "Unknown layer: 'X'".
UNKNOWN_CLASS = r"(?:Could not locate \w+|Unknown \w+:) '([^']+)'"


def _cause_of(error: Exception, unregistered=()) -> tuple[str, str]:
    message = str(error)
    if re.search(UNKNOWN_CLASS, message) or "register_keras_serializable" in message or unregistered:
        name = _quoted_name(message) or f"'{unregistered[0]}'"
        return (
            f"the custom class {name} is not registered as serializable, so load_model cannot find it.",
            REGISTER_FIX.format(name=name.strip("'") or "MyLayer"),
        )
    if "Lambda" in message or "safe_mode" in message:
        return (
            "a Lambda layer holds Python bytecode, which load_model(safe_mode=True) refuses to run.",
            "replace the Lambda with a small custom layer, registered with @keras.saving.register_keras_serializable().",
        )
    if isinstance(error, NotImplementedError) and "get_config" in message:
        return (
            "a custom layer takes constructor arguments but does not override get_config.",
            "override get_config() to return every constructor argument (and from_config if they are not plain values).",
        )
    return (
        f"{type(error).__name__} while rebuilding the model from its config: a get_config/from_config pair that "
        "does not round-trip.",
        "make get_config return every constructor argument as plain values; "
        "check keras.layers.deserialize(keras.layers.serialize(layer)) per custom layer.",
    )


def _state_outside_weights(trained, loaded) -> tuple[str, str]:
    """Every weight matches, predictions do not: find the attribute the files did not carry."""
    found = []
    for a, b in zip(walk_layers(trained), walk_layers(loaded)):
        if type(a.layer) is not type(b.layer):
            continue
        mine, theirs = _plain_attributes(a.layer), _plain_attributes(b.layer)
        for attribute in sorted(set(mine) | set(theirs)):
            if not _same_value(mine.get(attribute), theirs.get(attribute)):
                found.append((a, attribute, mine.get(attribute), theirs.get(attribute)))
    if not found:
        return (
            "every weight matches, so some state lives outside Keras variables and configs: a layer whose call "
            "reads globals or plain attributes, or random ops at inference.",
            "keep state in variables (self.add_weight(..., trainable=False)) and every constructor argument in get_config().",
        )
    layer, attribute, before, after = found[0]
    cls = type(layer.layer).__name__
    where = f"layer {layer.path} ({cls}) has {attribute}={_short(before)} in the trained model but {_short(after)} after loading"
    arguments = inspect.signature(type(layer.layer).__init__).parameters
    config = _config_keys(layer.layer)
    if attribute in arguments and attribute not in config:
        return (
            f"{where}: its get_config() omits '{attribute}', so loading builds it with the default.",
            f"return it from {cls}.get_config(): {{**super().get_config(), '{attribute}': self.{attribute}}}.",
        )
    return (
        f"{where}: '{attribute}' is a plain attribute, not in a Keras variable, so no file carries it.",
        f"create it in {cls}.__init__/build with self.add_weight(..., trainable=False) and assign to it "
        "(e.g. in adapt()); or, if it is a constructor argument, return it from get_config().",
    )


def _plain_attributes(layer) -> dict:
    plain = (bool, int, float, str, np.ndarray, np.generic, type(None))
    return {
        key: value
        for key, value in vars(layer).items()
        if not key.startswith("_") and key != "name" and isinstance(value, plain)
    }


def _same_value(a, b) -> bool:
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        return a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _config_keys(layer) -> set:
    try:
        return set(layer.get_config())
    except Exception:  # noqa: BLE001 - a config that fails names no keys
        return set()


def _predict(model, x, batch_size: int) -> list:
    """Inference-mode outputs, one array per output; a plain call, which changes no state."""
    outputs = [forward(model, x[start : start + batch_size], training=False) for start in range(0, len(x), batch_size)]
    flat = [_flatten(output) for output in outputs]
    return [np.concatenate([compat.to_numpy(batch[i]) for batch in flat]) for i in range(len(flat[0]))]


def _flatten(output) -> list:
    if isinstance(output, Mapping):
        return [output[key] for key in sorted(output)]
    if isinstance(output, (list, tuple)):
        return list(output)
    return [output]


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


def _first_sentence(error: Exception) -> str:
    """The error's first sentence, or Keras' inner reason where it wraps one ("Could not locate class 'X'")."""
    message = str(error)
    located = re.search(UNKNOWN_CLASS, message)
    if located:
        return f"{type(error).__name__}: {located.group(0)}"
    # The first sentence of the first paragraph, whose lines Keras often wraps mid-sentence.
    paragraph = " ".join(message.strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.:])\s", paragraph, maxsplit=1)[0].rstrip(".:")
    return f"{type(error).__name__}: {sentence}"[:300]


def _quoted_name(message: str) -> str:
    match = re.search(UNKNOWN_CLASS, message)
    return f"'{match.group(1)}'" if match else ""


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, threshold=6)
    return repr(value)
