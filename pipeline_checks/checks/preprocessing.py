"""Check: training and inference turn the same raw images into the same model inputs.

And, when the pipeline names a `keras.applications` model, into the inputs that
application's own `preprocess_input` gives (`application_inputs`).
"""

from __future__ import annotations

import numpy as np

from pipeline_checks._validation import check_integer, check_number
from pipeline_checks.checks.application_inputs import (
    application_inputs,
    application_mismatch,
    application_numbers,
    judged_inputs,
)
from pipeline_checks.checks.family import OWN_FIT, family
from pipeline_checks.checks.input_statistics import (
    Comparison,
    compare,
    conventions,
    described,
    equal_values,
    looks_like,
    same_values,
    statistics,
)
from pipeline_checks.pipelines.input_kind import are_images, not_images, word_for_rank
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import Finding, verdict

NAME = "preprocessing"
DEFAULT_TOLERANCE = 0.05
DEFAULT_SAMPLES = 64


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

    NaN and Inf compare equal where both paths give them (a division by a zero standard
    deviation in the shared preprocessing is no augmentation): the check then passes and says
    how many inputs are non-finite, which `check_numerics` fails, naming where they first
    appear. A value non-finite in one path only is a difference between the paths.

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
    tolerance = check_number("tolerance", tolerance, "a fraction of the inputs' value range, in [0, 1)", 0, 1)
    samples = check_integer("samples", samples, 1, "a positive integer")
    from pipeline_checks.model import compat

    images = _chosen(pipeline.raw_data().images, samples, seed)
    compat.set_random_seed(seed, keep_compiled=True)  # keeps the shared run's compiled step for the replay
    train = pipeline.train_inputs(images)
    train_again = pipeline.train_inputs(images)
    infer, infer_again = pipeline.infer_inputs(images), pipeline.infer_inputs(images)
    random = _differ(train, train_again)
    known = conventions(images)

    paths = compare([train, train_again] if random else [train], infer, tolerance, same_shape=True)
    numbers = _path_numbers(paths, random)
    names = pipeline.path_names()
    findings = [] if paths.agrees else [_path_mismatch(paths, known, random, names)]
    numbers["infer_random"] = _differ(infer, infer_again)
    if numbers["infer_random"]:
        findings.append(_random_serving(infer, infer_again, names[1], declared=pipeline.preprocess_infer is not None))
    application = judged = None
    if pipeline.application is not None and are_images(images):
        application = application_inputs(pipeline.application, images)
        judged = judged_inputs(pipeline, infer, seed)
        expected = compare([judged.inputs], application.inputs, tolerance, same_shape=False)
        numbers.update(application_numbers(application, expected, judged))
        if not expected.agrees:
            findings.append(application_mismatch(application, expected, known, judged, tolerance))

    notes = []
    numbers["non_finite_inputs"] = paths.reference.non_finite
    if not findings:
        notes = [f"  {described(names[0], paths.ours, known)}", f"  {described(names[1], paths.reference, known)}"]
        if judged is not None and judged.start is not None:
            notes.append(f"  {described(judged.label, statistics(judged.inputs), known)}")
    if judged is not None and judged.note:
        notes.append(judged.note)
    notes += _not_images_notes(pipeline, images)
    return verdict(NAME, pipeline, findings, _agreement_summary(paths, random, application, judged), notes, **numbers)


def _not_images_notes(pipeline, images: np.ndarray) -> list[str]:
    """What is not judged on inputs that are not images: pixel conventions, the application's preprocess_input."""
    if are_images(images):
        return []
    notes = [f"  {not_images(images)}: the paths are compared value by value; no pixel convention is named"]
    if pipeline.application is not None:
        notes.append(f"  {not_images(images)}: {pipeline.application}'s preprocess_input is not judged")
    return notes


def _differ(first: np.ndarray, second: np.ndarray) -> bool:
    return not same_values(first, second)  # NaN equal to NaN: NaN inputs are not random ones


def _chosen(images: np.ndarray, samples: int, seed: int) -> np.ndarray:
    if len(images) <= samples:
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), samples, replace=False))]


def _path_numbers(paths: Comparison, random: bool) -> dict:
    return {
        "max_abs_difference": paths.max_abs_difference,
        "images_differing": paths.images_differing,
        "values_differing": paths.values_differing,
        "statistics_gap": paths.statistics_gap,
        "train_range": (paths.ours.low, paths.ours.high),
        "infer_range": (paths.reference.low, paths.reference.high),
        "train_random": random,
    }


def _path_mismatch(paths: Comparison, known, random: bool, names: tuple[str, str]) -> Finding:
    """Training and inference inputs differ by more than augmentation explains: how, and why."""
    n, (train, infer) = paths.reference.shape[0], names
    rows = f"{word_for_rank(len(paths.reference.shape))}s"
    train_looks, infer_looks = looks_like(paths.ours, known), looks_like(paths.reference, known)
    fix = (
        f"build both paths from one function: {infer} = {train}'s deterministic part "
        "(decoding, resizing, scaling, normalization) without the augmentation"
    )
    if paths.shape_mismatch:
        summary = f"{train} and {infer} give inputs of different shapes for the same {n} {rows}: {paths.differences()}"
        cause = "the two paths resize, crop or convert channels differently"
        fix = (
            "resize and crop to one shape in both paths "
            "(e.g. random crops in training, a center crop of that size at inference)"
        )
    else:
        summary = f"{train} and {infer} give different inputs for the same {n} {rows}: {paths.differences()}"
        per_draw = paths.ours.non_finite // (2 if random else 1)  # `ours` holds both draws of a random path
        if per_draw != paths.reference.non_finite:
            cause = (
                f"one path gives NaN or Inf where the other does not ({train} gives {per_draw:,} such values, "
                f"{infer} {paths.reference.non_finite:,}): e.g. a division by a zero standard deviation "
                "or a log of 0 in one path only"
            )
        elif paths.channels_reversed:
            cause = (
                "the channel order is reversed between the paths (RGB in one, BGR in the other, e.g. cv2.imread in one)"
            )
        elif train_looks and infer_looks and train_looks != infer_looks:
            cause = f"training feeds {train_looks} but inference feeds {infer_looks}"
        else:
            cause = "the two paths scale, offset, normalize or order channels differently"
        cause += ", so the model is served inputs unlike those it was trained on"
    how = f"{train} is random (two calls differ)" if random else "the values differ"
    detail = "\n  ".join(
        [
            f"{how}, so the statistics augmentation keeps were compared: {paths.explained()}: "
            "more than augmentation explains.",
            described(train, paths.ours, known),
            described(infer, paths.reference, known),
        ]
    )
    return Finding(summary, detail, fix=f"{fix}.", cause=f"{cause}.")


def _random_serving(first, second, infer: str, declared: bool) -> Finding:
    """Inference inputs that differ between two calls on the same images: augmentation at serving, or no
    serving path declared, so that the checks serve through the training path and its augmentation."""
    summary = f"{infer} is random: two calls on the same images give different inputs"
    if first.shape == second.shape:
        differing = int(np.any(~equal_values(first, second).reshape(len(first), -1), axis=1).sum())
        summary += f" ({differing} of {len(first)} images differ)"
    if not declared:
        return Finding(
            summary,
            cause=f"no preprocess_infer is declared, so the checks serve through {infer}, the training path, "
            "and its augmentation runs at serving.",
            fix="declare the serving code as preprocess_infer (raw images -> model inputs, e.g. "
            "lambda images: images where the model rescales them itself).",
        )
    return Finding(
        summary,
        cause="augmentation runs at serving (a random layer called with training=True, or the training "
        "dataset's augmentation map reused for inference), so one image gets a different prediction each time.",
        fix="serve with the deterministic part of the training path only (decoding, resizing, scaling); "
        "declare it as preprocess_infer.",
    )


def _agreement_summary(paths: Comparison, random: bool, application, judged) -> str:
    n, rows = paths.reference.shape[0], f"{word_for_rank(len(paths.reference.shape))}s"
    if paths.identical:
        text = f"training and inference give identical inputs for {n} {rows}, range {paths.reference.value_range}"
    else:
        gap = f"{paths.statistics_gap:.2g}" if paths.statistics_gap >= 1e-6 else "< 1e-6"
        text = (
            f"training and inference inputs differ only as {'random ' if random else ''}augmentation does "
            f"({paths.images_differing} of {n} {rows} differ; "
            f"the statistics it keeps agree: largest gap {gap} of the range)"
        )
    if paths.reference.non_finite:
        text += (
            f"; both hold {paths.reference.non_finite_text()}, not compared as a difference "
            "(check_numerics reports where they come from)"
        )
    if application is None:
        return text
    if judged.start is None:
        return text + f"; they follow {application.follows}"
    return (
        f"{text}; judged after the model's own {judged.in_model}, where {application.name}'s layers receive them: "
        f"range {statistics(judged.inputs).value_range} follows {application.follows}"
    )
