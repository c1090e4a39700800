"""Check: training and inference turn the same raw images into the same model inputs.

And, when the pipeline names a `keras.applications` model, into the inputs that
application's own `preprocess_input` gives: pretrained weights only work on inputs with
the scale, offset and channel order they were trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline_checks._validation import check_integer, check_number
from pipeline_checks.checks.family import OWN_FIT, family
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.run.builds import fresh_build

if TYPE_CHECKING:
    from pipeline_checks.model.preprocessing_layers import ApplicationStart

NAME = "preprocessing"
DEFAULT_TOLERANCE = 0.05
DEFAULT_SAMPLES = 64
SAME = 1e-5  # values closer than this fraction of the range are equal: float32 rounding, not a difference
LOOKS_LIKE = 0.02  # statistics this close to a known convention's name the convention
MODES = {
    "tf": "pixels scaled to [-1, 1] (x / 127.5 - 1)",
    "caffe": "BGR channel order with the ImageNet channel means subtracted, not scaled (about [-124, 152])",
    "torch": "pixels scaled to [0, 1], then normalized by the ImageNet mean and std (about [-2.1, 2.6])",
    "none": "raw pixels 0..255 (the model rescales inside)",
}


@family(NAME, OWN_FIT)
def check_preprocessing(
    pipeline, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE, samples: int = DEFAULT_SAMPLES
) -> CheckResult:
    """Fail when training and inference preprocess the same raw images differently.

    Both paths run on the same raw images. Inputs equal to float32 rounding pass. Inputs
    that differ are augmentation, which belongs to training, or a bug, so the check then
    compares what augmentation keeps, as fractions of the inference inputs' value range:
    the per-channel mean and standard deviation over all images, and each image's channel
    balance (its channel means less their average). Flips, rotations and translations keep
    all three exactly, zero-mean brightness jitter keeps them on average, while a different
    scale, offset, normalization or channel order moves them by a large fraction of the
    range. Augmentation that changes them (hue or strong contrast jitter) needs a larger
    `tolerance`. `preprocess_train` is called twice; when the calls differ it is random and
    both draws are compared.

    With `pipeline.application` set, the inputs the application's layers receive are compared
    in the same way with that application's `preprocess_input` applied to the raw images: e.g.
    [0, 1] inputs (`rescale=1/255`) for MobileNetV2, which expects [-1, 1], or RGB inputs for
    ResNet50, which expects BGR with the ImageNet means subtracted. Those are the inference
    inputs, unless the model preprocesses them itself in front of the application (a
    `Rescaling(1/127.5, offset=-1)` before a MobileNetV2 base, a `Normalization`, a `Lambda`
    calling `preprocess_input`): the model is then built (not trained) and run in inference
    mode, and what the application's first layer receives is judged. So a model that scales
    raw pixels itself passes, and one that scales them to the wrong range, or inputs already
    preprocessed outside, fails.

    Args:
        pipeline: a `Pipeline`.
        seed: seeds the random generators before preprocessing, and picks the images when
            the data holds more than `samples`.
        tolerance: the largest gap of each statistic, as a fraction of the reference inputs'
            value range (max - min), in [0, 1).
        samples: how many raw images to preprocess, at least 1.

    Returns:
        A `CheckResult` with the largest difference, how many images and values differ,
        both value ranges and, with an application, its range, and where its inputs were
        judged (`application_judged_after`: the model's own preprocessing layers, or None).

    Example:
        >>> check_preprocessing(pipeline).raise_if_failed()
    """
    pipeline, seed = checked_pipeline(pipeline), checked_seed(seed)
    tolerance = check_number("tolerance", tolerance, "a fraction of the inputs' value range, in [0, 1)", 0, 1)
    samples = check_integer("samples", samples, 1, "a positive integer")
    from pipeline_checks.model import compat

    images = _chosen(pipeline.raw_data().images, samples, seed)
    compat.set_random_seed(seed, keep_compiled=True)  # keeps the shared run's compiled step for the replay
    train = pipeline.train_inputs(images)
    train_again = pipeline.train_inputs(images)
    infer, infer_again = pipeline.infer_inputs(images), pipeline.infer_inputs(images)
    random = train.shape != train_again.shape or not np.array_equal(train, train_again)
    conventions = _conventions(images)

    paths = _compare([train, train_again] if random else [train], infer, tolerance, same_shape=True)
    numbers = _path_numbers(paths, random)
    names = pipeline.path_names()
    findings = [] if paths.agrees else [_path_mismatch(paths, conventions, random, names)]
    numbers["infer_random"] = infer.shape != infer_again.shape or not np.array_equal(infer, infer_again)
    if numbers["infer_random"]:
        findings.append(_random_serving(infer, infer_again, names[1]))
    application = judged = None
    if pipeline.application is not None:
        application = _application_inputs(pipeline.application, images)
        judged = _judged_inputs(pipeline, infer, seed)
        expected = _compare([judged.inputs], application.inputs, tolerance, same_shape=False)
        numbers.update(_application_numbers(application, expected, judged))
        if not expected.agrees:
            findings.append(_application_mismatch(application, expected, conventions, judged, tolerance))

    notes = [judged.note] if judged is not None and judged.note else []
    if findings:
        summary = "; and ".join(summary for summary, _ in findings)
        return failed(NAME, pipeline, summary, "\n".join([*(details for _, details in findings), *notes]), **numbers)
    details = [_described(names[0], paths.ours, conventions), _described(names[1], paths.reference, conventions)]
    if judged is not None and judged.start is not None:
        details.append(_described(judged.label, _statistics(judged.inputs), conventions))
    summary = _agreement_summary(paths, random, application, judged)
    return passed(NAME, pipeline, summary, "\n".join([*details, *notes]), **numbers)


@dataclass(frozen=True)
class _Statistics:
    """What augmentation keeps of a batch of inputs, compared instead of the values themselves.

    `balance` is each image's channel means less their average: brightness jitter keeps it,
    swapping RGB and BGR does not. Without a channel axis (fewer than 3 dimensions) the
    inputs count as one channel.
    """

    shape: tuple
    mean: np.ndarray  # per channel, over all images and positions
    std: np.ndarray
    balance: np.ndarray | None  # (images, channels)
    low: float
    high: float

    @property
    def scale(self) -> float:
        width = self.high - self.low
        return width if width > 0 else max(abs(self.low), abs(self.high), 1.0)

    def pooled(self) -> tuple[float, float]:
        """Mean and std over all channels together."""
        mean = float(self.mean.mean())
        return mean, float(np.sqrt(max((self.std**2 + self.mean**2).mean() - mean**2, 0.0)))

    def reversed_channels(self) -> _Statistics:
        balance = None if self.balance is None else self.balance[:, ::-1]
        return _Statistics(self.shape, self.mean[::-1], self.std[::-1], balance, self.low, self.high)


def _statistics(inputs) -> _Statistics:
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim < 3:
        flat = x.reshape(-1, 1)
        return _Statistics(x.shape, flat.mean(axis=0), flat.std(axis=0), None, float(x.min()), float(x.max()))
    means = x.reshape(len(x), -1, x.shape[-1]).mean(axis=1)
    flat = x.reshape(-1, x.shape[-1])
    balance = means - means.mean(axis=1, keepdims=True)
    return _Statistics(x.shape, flat.mean(axis=0), flat.std(axis=0), balance, float(x.min()), float(x.max()))


def _gaps(ours: _Statistics, reference: _Statistics) -> tuple[float, float, float]:
    """Largest gaps of mean, std and balance, as fractions of the reference's range."""
    scale = reference.scale
    if ours.balance is None or reference.balance is None or ours.mean.shape != reference.mean.shape:
        (ours_mean, ours_std), (reference_mean, reference_std) = ours.pooled(), reference.pooled()
        return abs(ours_mean - reference_mean) / scale, abs(ours_std - reference_std) / scale, 0.0
    balance, reference_balance = ours.balance, reference.balance
    if len(balance) % len(reference_balance) == 0:  # several draws of the same images
        reference_balance = np.tile(reference_balance, (len(balance) // len(reference_balance), 1))
    count = min(len(balance), len(reference_balance))
    balance_gap = np.abs(balance[:count] - reference_balance[:count]).max(axis=1).mean()
    return (
        float(np.abs(ours.mean - reference.mean).max() / scale),
        float(np.abs(ours.std - reference.std).max() / scale),
        float(balance_gap / scale),
    )


@dataclass(frozen=True)
class _Comparison:
    """Inputs of the checked path (`ours`) against a reference, from the same raw images.

    Values equal to float32 rounding agree. Otherwise the statistics must: their gaps are
    fractions of the reference's value range, within `tolerance` plus, for a random path,
    `allowance`: what the statistics move between its two draws, augmentation's own
    spread, measured rather than guessed.
    """

    ours: _Statistics
    reference: _Statistics
    max_abs_difference: float | None  # None: the shapes differ, only statistics compare
    images_differing: int | None
    values_differing: int | None
    gaps: tuple[float, float, float]  # mean, std, balance
    shape_mismatch: bool
    tolerance: float
    allowance: float = 0.0

    @property
    def identical(self) -> bool:
        return self.values_differing == 0

    @property
    def statistics_gap(self) -> float:
        return max(self.gaps)

    @property
    def agrees(self) -> bool:
        return self.identical or (not self.shape_mismatch and self.statistics_gap <= self.tolerance + self.allowance)

    def differences(self) -> str:
        if self.max_abs_difference is None:
            return f"shapes {self.ours.shape[1:]} and {self.reference.shape[1:]} per image"
        images, values, total = self.images_differing, self.values_differing, int(np.prod(self.reference.shape))
        return (
            f"max abs difference {self.max_abs_difference:.4g} ({images} of {self.reference.shape[0]} images, "
            f"{values:,} of {total:,} values, {values / total:.1%})"
        )

    def explained(self) -> str:
        allowed = f"tolerance {self.tolerance:g}"
        if self.allowance:
            allowed += f" + {self.allowance:.2g} that augmentation moves them between two draws"
        mean, std, balance = self.gaps
        return (
            f"per-channel mean differs by {mean:.3g}, std by {std:.3g} and channel balance by {balance:.3g} "
            f"of the range {self.reference.scale:.4g} ({allowed})"
        )


def _compare(draws, reference, tolerance: float, same_shape: bool) -> _Comparison:
    """Compare one or two draws of a path's inputs with the reference inputs."""
    first, reference = np.asarray(draws[0]), np.asarray(reference)
    ours = _statistics(np.concatenate(draws) if len({np.shape(d) for d in draws}) == 1 else first)
    expected = _statistics(reference)
    max_abs = images = values = None
    if first.shape == reference.shape:
        difference = np.abs(first.astype(np.float64) - reference)
        differs = difference > SAME * expected.scale
        max_abs, values = float(difference.max()), int(differs.sum())
        images = int(differs.reshape(len(differs), -1).any(axis=1).sum())
    allowance = 0.0
    if len(draws) == 2 and np.shape(draws[0]) == np.shape(draws[1]):
        allowance = max(_gaps(_statistics(draws[0]), _statistics(draws[1])))
        allowance *= _statistics(draws[1]).scale / expected.scale
    return _Comparison(
        ours=ours,
        reference=expected,
        max_abs_difference=max_abs,
        images_differing=images,
        values_differing=values,
        gaps=_gaps(ours, expected),
        shape_mismatch=(same_shape and first.shape[1:] != reference.shape[1:]) or first.ndim != reference.ndim,
        tolerance=tolerance,
        allowance=allowance,
    )


def _chosen(images: np.ndarray, samples: int, seed: int) -> np.ndarray:
    if len(images) <= samples:
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), samples, replace=False))]


# -- naming what a path does ---------------------------------------------------------------


def _conventions(images: np.ndarray) -> dict[str, _Statistics]:
    """The statistics of the usual preprocessings of the raw images, to name what a path does."""
    from pipeline_checks.model.applications import preprocess_input_for

    pixels = np.asarray(images, dtype=np.float32)
    found = {
        "raw pixels 0..255": _statistics(pixels),
        "pixels / 255, in [0, 1] (rescale=1/255)": _statistics(pixels / 255.0),
        "pixels / 127.5 - 1, in [-1, 1] ('tf' mode)": _statistics(pixels / 127.5 - 1.0),
    }
    if pixels.shape[-1] == 3:
        caffe = _statistics(preprocess_input_for("ResNet50")(pixels.copy()))  # caffe mode writes in place
        found["BGR with the ImageNet means subtracted ('caffe' mode)"] = caffe
        found["RGB with the ImageNet means subtracted (caffe mode without the swap to BGR)"] = caffe.reversed_channels()
        found["ImageNet mean and std normalization ('torch' mode)"] = _statistics(
            preprocess_input_for("DenseNet121")(pixels.copy())
        )
    return found


def _looks_like(inputs: _Statistics, conventions: dict[str, _Statistics]) -> str | None:
    if inputs.balance is None or inputs.mean.shape != next(iter(conventions.values())).mean.shape:
        return None
    gaps = {name: max(_gaps(inputs, candidate)) for name, candidate in conventions.items()}
    best = min(gaps, key=gaps.get)
    return best if gaps[best] <= LOOKS_LIKE else None


def _described(label: str, inputs: _Statistics, conventions) -> str:
    looks = _looks_like(inputs, conventions)
    mean = ""
    if inputs.balance is not None and len(inputs.mean) <= 4:
        mean = ", per-channel mean " + " ".join(f"{m:.3g}" for m in inputs.mean)
    return f"  {label}: range {_range(inputs)}{mean}{f'; looks like {looks}' if looks else ''}"


def _range(inputs: _Statistics) -> str:
    return f"[{inputs.low:.4g}, {inputs.high:.4g}]"


def _channels_reversed(comparison: _Comparison) -> bool:
    ours, reference = comparison.ours, comparison.reference
    if ours.balance is None or len(ours.mean) < 2 or ours.mean.shape != reference.mean.shape:
        return False
    return max(_gaps(ours.reversed_channels(), reference)) <= comparison.tolerance + comparison.allowance


# -- training path against inference path --------------------------------------------------


def _path_numbers(paths: _Comparison, random: bool) -> dict:
    return {
        "max_abs_difference": paths.max_abs_difference,
        "images_differing": paths.images_differing,
        "values_differing": paths.values_differing,
        "statistics_gap": paths.statistics_gap,
        "train_range": (paths.ours.low, paths.ours.high),
        "infer_range": (paths.reference.low, paths.reference.high),
        "train_random": random,
    }


def _path_mismatch(paths: _Comparison, conventions, random: bool, names: tuple[str, str]) -> tuple[str, str]:
    n, (train, infer) = paths.reference.shape[0], names
    train_looks, infer_looks = _looks_like(paths.ours, conventions), _looks_like(paths.reference, conventions)
    fix = (
        f"build both paths from one function: {infer} = {train}'s deterministic part "
        "(decoding, resizing, scaling, normalization) without the augmentation"
    )
    if paths.shape_mismatch:
        summary = f"{train} and {infer} give inputs of different shapes for the same {n} images: {paths.differences()}"
        cause = "the two paths resize, crop or convert channels differently"
        fix = "resize and crop to one shape in both paths (e.g. random crops in training, a center crop of that size at inference)"
    else:
        summary = f"{train} and {infer} give different inputs for the same {n} images: {paths.differences()}"
        if _channels_reversed(paths):
            cause = (
                "the channel order is reversed between the paths (RGB in one, BGR in the other, e.g. cv2.imread in one)"
            )
        elif train_looks and infer_looks and train_looks != infer_looks:
            cause = f"training feeds {train_looks} but inference feeds {infer_looks}"
        else:
            cause = "the two paths scale, offset, normalize or order channels differently"
        cause += ", so the model is served inputs unlike those it was trained on"
    how = f"{train} is random (two calls differ)" if random else "the values differ"
    details = "\n".join(
        [
            _described(train, paths.ours, conventions),
            _described(infer, paths.reference, conventions),
            f"  {how}, so the statistics augmentation keeps were compared: {paths.explained()}: more than augmentation explains.",
            f"  Likely cause: {cause}.",
            f"  Fix: {fix}.",
        ]
    )
    return summary, details


def _random_serving(first, second, infer: str) -> tuple[str, str]:
    """Inference inputs that differ between two calls on the same images: augmentation at serving."""
    summary = f"{infer} is random: two calls on the same images give different inputs"
    if first.shape == second.shape:
        differing = int(np.any((first != second).reshape(len(first), -1), axis=1).sum())
        summary += f" ({differing} of {len(first)} images differ)"
    details = (
        f"  {summary}.\n"
        "  Likely cause: augmentation runs at serving (a random layer called with training=True, or the training "
        "dataset's augmentation map reused for inference), so one image gets a different prediction each time.\n"
        "  Fix: serve with the deterministic part of the training path only (decoding, resizing, scaling); "
        "declare it as preprocess_infer."
    )
    return summary, details


def _agreement_summary(paths: _Comparison, random: bool, application, judged) -> str:
    n = paths.reference.shape[0]
    if paths.identical:
        text = f"training and inference give identical inputs for {n} images, range {_range(paths.reference)}"
    else:
        gap = f"{paths.statistics_gap:.2g}" if paths.statistics_gap >= 1e-6 else "< 1e-6"
        text = (
            f"training and inference inputs differ only as {'random ' if random else ''}augmentation does "
            f"({paths.images_differing} of {n} images differ; the statistics it keeps agree: largest gap {gap} of the range)"
        )
    if application is None:
        return text
    follows = f"{application.name}'s preprocess_input ('{application.mode}' mode, range {_range(_statistics(application.inputs))})"
    if judged.start is None:
        return text + f"; they follow {follows}"
    return (
        f"{text}; judged after the model's own {judged.in_model}, where {application.name}'s layers receive them: "
        f"range {_range(_statistics(judged.inputs))} follows {follows}"
    )


# -- inference path against the application's preprocess_input -----------------------------

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
class _ApplicationInputs:
    name: str
    module: str
    mode: str
    inputs: np.ndarray


def _application_inputs(name: str, images: np.ndarray) -> _ApplicationInputs:
    """The application's own `preprocess_input` on a float32 copy of the raw images."""
    from pipeline_checks.model.applications import APPLICATIONS, preprocess_input_for

    spec = APPLICATIONS[name]
    preprocess = preprocess_input_for(name, channels=images.shape[-1])
    inputs = np.asarray(preprocess(np.array(images, dtype=np.float32)), dtype=np.float64)
    return _ApplicationInputs(spec.name, spec.module, spec.preprocessing, inputs)


@dataclass(frozen=True)
class _Judged:
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


def _judged_inputs(pipeline, infer: np.ndarray, seed: int) -> _Judged:
    """What the application's first layer receives from the inference inputs.

    The model is built from `seed` and run in inference mode up to the application (nothing
    is trained); inputs it leaves unchanged there are judged as the pipeline gives them.
    """
    from pipeline_checks.model.preprocessing_layers import (
        application_start,
        inputs_received,
    )

    infer = np.asarray(infer)
    try:
        model = fresh_build(pipeline, seed)
        if not model.built:  # a Sequential without an input shape has no weights to walk until called
            model(infer[:1], training=False)
    except Exception as error:  # the pipeline's own code: the checks that train report it
        return _not_run(pipeline, infer, error)
    start = application_start(model, pipeline.application)
    if start is None:
        return _Judged(infer, infer)
    try:
        received = inputs_received(model, start.first.layer, infer)
    except Exception as error:  # the model's own layers on the pipeline's inputs, as above
        return _not_run(pipeline, infer, error)
    if received is None or _unchanged(received, infer):
        return _Judged(infer, infer)
    return _Judged(received, infer, start)


def _not_run(pipeline, infer: np.ndarray, error: Exception) -> _Judged:
    note = (
        f"  Note: the model could not be run up to {pipeline.application} ({type(error).__name__}: {error}), "
        "so its inputs were judged as the pipeline feeds them."
    )
    return _Judged(infer, infer, note=note)


def _unchanged(received: np.ndarray, infer: np.ndarray) -> bool:
    if received.shape != infer.shape:
        return False
    scale = _statistics(infer).scale
    return bool(np.abs(received - infer.astype(np.float64)).max() <= SAME * scale)


def _application_numbers(application: _ApplicationInputs, expected: _Comparison, judged: _Judged) -> dict:
    return {
        "application": application.name,
        "application_range": (float(application.inputs.min()), float(application.inputs.max())),
        "application_max_abs_difference": expected.max_abs_difference,
        "application_statistics_gap": expected.statistics_gap,
        "application_judged_after": None if judged.start is None else judged.in_model,
        "application_inputs_range": (expected.ours.low, expected.ours.high),
    }


def _application_mismatch(
    application: _ApplicationInputs, expected: _Comparison, conventions, judged: _Judged, tolerance: float
) -> tuple[str, str]:
    name, mode = application.name, application.mode
    ours, reference = _range(expected.ours), _range(expected.reference)
    where = "" if judged.start is None else f" where its layers receive them, after the model's own {judged.in_model}"
    summary = f"inputs do not follow {name}'s preprocess_input{where}: " + (
        f"range {ours}, where {name} expects {reference} ('{mode}' mode)"
        if ours != reference
        else f"{expected.differences()} within the same range {ours} ('{mode}' mode)"
    )
    if _channels_reversed(expected):
        seen = "the inputs are in reversed channel order (RGB for BGR, or BGR for RGB)"
    else:
        looks = _looks_like(expected.ours, conventions)
        seen = f"the inputs are {looks}" if looks else "the inputs follow none of the usual conventions"
    lines = [_described("pipeline inputs (preprocess_infer)", _statistics(judged.pipeline_inputs), conventions)]
    if judged.start is not None:
        lines.append(_described(judged.label, expected.ours, conventions))
    lines += [
        _described(f"{name} preprocess_input", expected.reference, conventions),
        f"  {expected.differences()}; {expected.explained()}.",
    ]
    if judged.start is None:
        cause, fix = _outside_cause(application, seen)
    else:
        cause, fix = _in_model_cause(application, judged, _received(expected, conventions), conventions, tolerance)
    return summary, "\n".join([*lines, f"  Likely cause: {cause}.", f"  Fix: {fix}."])


def _outside_cause(application: _ApplicationInputs, seen: str) -> tuple[str, str]:
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


def _received(expected: _Comparison, conventions) -> str:
    """What the application's layers receive, named: a convention, or its range."""
    if _channels_reversed(expected):
        return "inputs in reversed channel order (RGB for BGR, or BGR for RGB)"
    return (
        _looks_like(expected.ours, conventions)
        or f"inputs in {_range(expected.ours)}, which follow none of the usual conventions"
    )


def _in_model_cause(
    application: _ApplicationInputs, judged: _Judged, received: str, conventions, tolerance: float
) -> tuple[str, str]:
    """The model's own preprocessing gives the application other inputs than it expects: applied
    to inputs already in the application's convention (twice), or the wrong preprocessing."""
    name, mode, own = application.name, application.mode, judged.in_model
    expects = MODES[mode]
    # 'none' mode's preprocess_input is the identity: raw pixels follow it without being preprocessed
    if mode != "none" and _compare([judged.pipeline_inputs], application.inputs, tolerance, same_shape=False).agrees:
        cause = (
            f"the inputs are preprocessed twice: the pipeline already gives {name}'s convention ({expects}), "
            f"and the model's own {own} transforms them again, so {name}'s layers receive {received}"
        )
        fix = (
            f"preprocess once: remove the model's own {own}, or feed the model raw pixels "
            f"(drop {application.module}.preprocess_input from preprocess_train and preprocess_infer)"
        )
        return cause, fix
    fed = _statistics(judged.pipeline_inputs)
    fed_named = _looks_like(fed, conventions) or f"inputs in {_range(fed)}"
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


# -- arguments -----------------------------------------------------------------------------
