"""The labels check on a segmentation (a class label per pixel): masks against the classes, the head and the loss.

Every count is over pixels: a class's share is its share of the masks' pixels, the head's width is
the last axis of its per-pixel output, and the per-pixel loss before training is reported beside
ln C (not judged: the correct U-Net starts near 5 for ln 3 = 1.1). The bugs these catch train
without an error: keras.io's Oxford pets example subtracts 1 from the trimap's 1, 2, 3; without
it, sparse cross-entropy reads class 3 past a 3-class head (fit raises on TensorFlow, after the data is built), and
masks resized apart from the images label a different grid than the output's.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline_checks.errors import pipeline_step
from pipeline_checks.model import compat
from pipeline_checks.model.compile_arguments import compile_mistake_of
from pipeline_checks.model.heads import initial_losses
from pipeline_checks.model.losses import loss_facts
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import Finding, verdict


def check_masks(pipeline, name: str, raw, validation, masks, x_train, x_infer, model) -> CheckResult:
    """The segmentation part of `check_labels` (`RawData.task == "segmentation"`)."""
    labels = np.asarray(raw.labels)
    classes = raw.classes
    low, high = int(labels.min()), int(labels.max())
    counts = np.bincount(labels.reshape(-1).clip(min=0), minlength=max(classes, high + 1))
    shares = counts / counts.sum()
    loss = loss_facts(getattr(model, "loss", None))
    numbers = dict(
        task="segmentation",
        classes=classes,
        mask_shape=tuple(labels.shape[1:]),
        data_labels=(low, high),
        pixel_shares=tuple(round(float(s), 4) for s in shares),
        loss=loss.name,
    )
    findings, notes = [], []
    if low < 0 or high >= classes:
        findings.append(_out_of_range(raw, low, high, shares))
    else:
        missing = [raw.class_names[c] if c < len(raw.class_names) else str(c) for c in range(classes) if counts[c] == 0]
        if missing or classes < 2:
            findings.append(_classes_missing(raw, missing))
    with pipeline_step(pipeline, "the model on a training batch (check_labels' passes)", compile_mistake_of(model)):
        outputs = compat.to_numpy(model(x_infer, training=False))  # torch: detached from its graph
    numbers["output_shape"] = tuple(outputs.shape[1:])
    if outputs.ndim != 4:
        notes.append(f"head not checked per pixel: outputs have shape {outputs.shape}, not (batch, H, W, classes)")
    else:
        width = outputs.shape[-1]
        numbers["output_width"] = width
        if width != classes:
            findings.append(_width_differs(width, raw))
        if tuple(outputs.shape[1:3]) != tuple(labels.shape[1:3]):
            findings.append(_size_differs(outputs.shape[1:3], labels.shape[1:3]))
    encoding = pipeline.encoding_of(masks)
    numbers["mask_encoding"] = encoding
    if loss.categorical and loss.kind != encoding:
        findings.append(_loss_encoding(loss.name, encoding))
    elif not loss.categorical:
        notes.append(f"loss {loss.name} is not a categorical cross-entropy: the per-pixel loss is not judged")
    if loss.crossentropy and loss.categorical and not findings:
        with pipeline_step(pipeline, "the model's loss before training (check_labels)", compile_mistake_of(model)):
            data, _ = initial_losses(model, x_train, masks, pipeline.batch_size)
        expected = math.log(classes)
        numbers.update(initial_loss=round(float(data), 4), expected_initial_loss=round(expected, 4))
        notes.append(
            f"per-pixel loss before training {data:.3g} (ln C = {expected:.3g}): reported, not judged; keras.io's "
            "U-Net, correct, starts at 5.1 in its training-mode pass (residual adds widen its logits)"
        )
    notes.append("label permutation and validation class order are judged on classifiers only: not applied per pixel")
    summary = (
        f"masks {tuple(labels.shape[1:])} of {classes} classes {low}..{high}, pixel shares "
        + ", ".join(f"{s:.2f}" for s in shares[:classes])
        + f"; loss {loss.name}"
    )
    if validation is not None:
        v_low, v_high = int(np.min(validation.labels)), int(np.max(validation.labels))
        numbers["validation_labels"] = (v_low, v_high)
        if v_low < 0 or v_high >= classes:
            findings.append(_out_of_range(validation, v_low, v_high, None, split="validation_data"))
    return verdict(name, pipeline, findings, summary, notes=[f"  {note}" for note in notes], **numbers)


def _out_of_range(raw, low: int, high: int, shares, split: str = "data") -> Finding:
    shifted = low == 1 and high == raw.classes
    detail = f"the {split} masks' pixels run {low}..{high} for {raw.classes} classes {tuple(raw.class_names)}"
    if shares is not None and high < len(shares):
        detail += f" ({shares[high]:.0%} of the pixels are {high})"
    return Finding(
        f"mask labels run {low}..{high} for {raw.classes} classes",
        detail,
        fix="subtract 1 from the masks (keras.io's Oxford pets example: `y -= 1` on the trimap's 1, 2, 3)"
        if shifted
        else f"map the mask values onto 0..{raw.classes - 1}, or declare class_names for every value",
        cause="1-based masks (a trimap's 1, 2, 3) read as class indices: the top value names no unit of the "
        "head (TensorFlow's sparse cross-entropy raises 'outside the valid range' in fit; elsewhere it is "
        "read silently)"
        if shifted
        else "",
    )


def _classes_missing(raw, missing) -> Finding:
    return Finding(
        f"{len(missing)} of {raw.classes} classes have no pixel in the masks",
        f"no pixel is labelled {', '.join(missing)}",
        fix="check the masks' loading (every mask the same? a threshold that merges classes?) or the class_names",
    )


def _width_differs(width: int, raw) -> Finding:
    return Finding(
        f"the head gives {width} scores per pixel for {raw.classes} classes",
        f"the last axis of the model's per-pixel output is {width}, class_names name {raw.classes}",
        fix=f"end the model with Conv2D({raw.classes}, ..., activation='softmax'), or fix class_names",
    )


def _size_differs(output_size, mask_size) -> Finding:
    return Finding(
        f"masks are {tuple(mask_size)} but the model outputs {tuple(output_size)} pixels",
        "each mask pixel must label the output pixel at its place",
        fix="resize the masks with the images (nearest-neighbour), or upsample the output to the masks' size",
    )


def _loss_encoding(loss_name: str, encoding: str) -> Finding:
    wanted = "sparse_categorical_crossentropy" if encoding == "sparse" else "categorical_crossentropy"
    return Finding(
        f"loss {loss_name} on {encoding.replace('_', '-')} masks",
        f"{loss_name} expects {'integer' if 'sparse' in loss_name else 'one-hot'} masks",
        fix=f"compile with loss={wanted!r}",
    )
