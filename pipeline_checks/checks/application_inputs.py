"""The inputs a `keras.applications` model's layers receive, against its own `preprocess_input`.

Pretrained weights only work on inputs with the scale, offset and channel order they were
trained on. The inputs judged are the pipeline's inference inputs, or, where the model
preprocesses them itself in front of the application, what the application's first layer
receives from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline_checks.checks.input_statistics import Comparison, compare, described, looks_like, statistics, unchanged
from pipeline_checks.results.verdict import Finding
from pipeline_checks.run.builds import fresh_build

if TYPE_CHECKING:
    from pipeline_checks.model.preprocessing_layers import ApplicationStart

MODES = {
    "tf": "pixels scaled to [-1, 1] (x / 127.5 - 1)",
    "caffe": "BGR channel order with the ImageNet channel means subtracted, not scaled (about [-124, 152])",
    "torch": "pixels scaled to [0, 1], then normalized by the ImageNet mean and std (about [-2.1, 2.6])",
    "none": "raw pixels 0..255 (the model rescales inside)",
}
IN_MODEL_FIXES = {
    "tf": "keras.layers.Rescaling(1/127.5, offset=-1) on raw 0..255 pixels",
    "caffe": (
        "a keras.layers.Lambda calling keras.applications.{module}.preprocess_input on raw 0..255 pixels "
        "(it swaps RGB to BGR, which no Rescaling does)"
    ),
    "torch": (
        "keras.layers.Rescaling(1/255), then keras.layers.Normalization(mean=[0.485, 0.456, 0.406], "
        "variance=[0.229**2, 0.224**2, 0.225**2]) on raw 0..255 pixels"
    ),
    "none": "no layer at all: {name} rescales inside and takes raw 0..255 pixels",
}


@dataclass(frozen=True)
class ApplicationInputs:
    """What the application's own `preprocess_input` makes of the raw images."""

    name: str
    module: str
    mode: str
    inputs: np.ndarray

    @property
    def follows(self) -> str:
        return f"{self.name}'s preprocess_input ('{self.mode}' mode, range {statistics(self.inputs).value_range})"


def application_inputs(name: str, images: np.ndarray) -> ApplicationInputs:
    """The application's own `preprocess_input` on a float32 copy of the raw images."""
    from pipeline_checks.model.applications import APPLICATIONS, preprocess_input_for

    spec = APPLICATIONS[name]
    preprocess = preprocess_input_for(name, channels=images.shape[-1])
    inputs = np.asarray(preprocess(np.array(images, dtype=np.float32)), dtype=np.float64)
    return ApplicationInputs(spec.name, spec.module, spec.preprocessing, inputs)


@dataclass(frozen=True)
class JudgedInputs:
    """The inputs judged against the application's convention, and where they were taken.

    `start` is None when they are the pipeline's inference inputs: the model leaves them as
    they are up to the application, or was not run (`note` says why).
    """

    inputs: np.ndarray
    pipeline_inputs: np.ndarray
    start: ApplicationStart | None = None
    note: str = ""

    @property
    def in_model(self) -> str:
        """The model's own preprocessing in front of the application, named."""
        if self.start.in_front:
            return self.start.described()
        # Keras 3 records an op on a symbolic tensor (x / 127.5 - 1) as an operation, not a layer
        return f"operations in front of its first layer '{self.start.first.path}'"

    @property
    def label(self) -> str:
        return f"after the model's own {self.in_model}, as layer '{self.start.first.path}' receives them"


def judged_inputs(pipeline, infer: np.ndarray, seed: int) -> JudgedInputs:
    """What the application's first layer receives from the inference inputs.

    The model is built from `seed` and run in inference mode up to the application (nothing
    is trained); inputs it leaves unchanged there are judged as the pipeline gives them.
    """
    from pipeline_checks.model.preprocessing_layers import application_start, inputs_received

    infer = np.asarray(infer)
    try:
        model = fresh_build(pipeline, seed)
        if not model.built:  # a Sequential without an input shape has no weights to walk until called
            model(infer[:1], training=False)
    except Exception as error:  # the pipeline's own code: the checks that train report it
        return _not_run(pipeline, infer, error)
    start = application_start(model, pipeline.application)
    if start is None:
        return JudgedInputs(infer, infer)
    try:
        received = inputs_received(model, start.first.layer, infer)
    except Exception as error:  # the model's own layers on the pipeline's inputs, as above
        return _not_run(pipeline, infer, error)
    if received is None or unchanged(received, infer):
        return JudgedInputs(infer, infer)
    return JudgedInputs(received, infer, start)


def _not_run(pipeline, infer: np.ndarray, error: Exception) -> JudgedInputs:
    note = (
        f"  Note: the model could not be run up to {pipeline.application} ({type(error).__name__}: {error}), "
        "so its inputs were judged as the pipeline feeds them."
    )
    return JudgedInputs(infer, infer, note=note)


def application_numbers(application: ApplicationInputs, expected: Comparison, judged: JudgedInputs) -> dict:
    return {
        "application": application.name,
        "application_range": (float(application.inputs.min()), float(application.inputs.max())),
        "application_max_abs_difference": expected.max_abs_difference,
        "application_statistics_gap": expected.statistics_gap,
        "application_judged_after": None if judged.start is None else judged.in_model,
        "application_inputs_range": (expected.ours.low, expected.ours.high),
    }


def application_mismatch(
    application: ApplicationInputs, expected: Comparison, known, judged: JudgedInputs, tolerance: float
) -> Finding:
    """The judged inputs do not follow the application's `preprocess_input`: what they are instead, and the fix."""
    name, mode = application.name, application.mode
    ours, reference = expected.ours.value_range, expected.reference.value_range
    where = "" if judged.start is None else f" where its layers receive them, after the model's own {judged.in_model}"
    summary = f"inputs do not follow {name}'s preprocess_input{where}: " + (
        f"range {ours}, where {name} expects {reference} ('{mode}' mode)"
        if ours != reference
        else f"{expected.differences()} within the same range {ours} ('{mode}' mode)"
    )
    evidence = [described("pipeline inputs (preprocess_infer)", statistics(judged.pipeline_inputs), known)]
    if judged.start is not None:
        evidence.append(described(judged.label, expected.ours, known))
    evidence.append(described(f"{name} preprocess_input", expected.reference, known))
    detail = "\n  ".join([f"{expected.differences()}; {expected.explained()}.", *evidence])
    if judged.start is None:
        cause, fix = _outside_cause(application, expected, known)
    else:
        cause, fix = _in_model_cause(application, judged, _received(expected, known), known, tolerance)
    return Finding(summary, detail, fix=f"{fix}.", cause=f"{cause}.")


def _outside_cause(application: ApplicationInputs, expected: Comparison, known) -> tuple[str, str]:
    if expected.channels_reversed:
        seen = "the inputs are in reversed channel order (RGB for BGR, or BGR for RGB)"
    else:
        looks = looks_like(expected.ours, known)
        seen = f"the inputs are {looks}" if looks else "the inputs follow none of the usual conventions"
    name = application.name
    cause = (
        f"{seen}, where {name} expects {MODES[application.mode]}; its pretrained weights would see "
        "inputs unlike any they were trained on"
    )
    fix = (
        f"preprocess with keras.applications.{application.module}.preprocess_input "
        f"(pipeline_checks.model.applications.preprocess_input_for({name!r})) in training and inference"
    )
    return cause, fix


def _received(expected: Comparison, known) -> str:
    """What the application's layers receive, named: a convention, or its range."""
    if expected.channels_reversed:
        return "inputs in reversed channel order (RGB for BGR, or BGR for RGB)"
    return (
        looks_like(expected.ours, known)
        or f"inputs in {expected.ours.value_range}, which follow none of the usual conventions"
    )


def _in_model_cause(
    application: ApplicationInputs, judged: JudgedInputs, received: str, known, tolerance: float
) -> tuple[str, str]:
    """The model's own preprocessing gives the application other inputs than it expects: applied
    to inputs already in the application's convention (twice), or the wrong preprocessing."""
    name, mode, own = application.name, application.mode, judged.in_model
    expects = MODES[mode]
    # 'none' mode's preprocess_input is the identity: raw pixels follow it without being preprocessed
    if mode != "none" and compare([judged.pipeline_inputs], application.inputs, tolerance, same_shape=False).agrees:
        cause = (
            f"the inputs are preprocessed twice: the pipeline already gives {name}'s convention ({expects}), "
            f"and the model's own {own} transforms them again, so {name}'s layers receive {received}"
        )
        fix = (
            f"preprocess once: remove the model's own {own}, or feed the model raw pixels "
            f"(drop {application.module}.preprocess_input from preprocess_train and preprocess_infer)"
        )
        return cause, fix
    fed = statistics(judged.pipeline_inputs)
    fed_named = looks_like(fed, known) or f"inputs in {fed.value_range}"
    cause = (
        f"the model's own {own} turns the pipeline's {fed_named} into what {name}'s layers receive: {received}, "
        f"where {name} expects {expects}; its pretrained weights would see inputs unlike any they were trained on"
    )
    suggestion = IN_MODEL_FIXES[mode].format(module=application.module, name=name)
    fix = (
        f"make the model's own preprocessing give {name} {expects}: {suggestion}; or remove it and preprocess "
        f"with keras.applications.{application.module}.preprocess_input in training and inference"
    )
    return cause, fix
