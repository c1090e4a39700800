"""What the labels check says about a head that does not fit its loss or its labels.

Each function words one finding: what is wrong, the evidence, how Keras behaves on it, and
the fix. `labels.py` decides which apply.
"""

from __future__ import annotations

import math

from pipeline_checks._text import listed
from pipeline_checks.checks.label_permutation import FIT_SHARE, MIN_IMAGES, LabelComparison
from pipeline_checks.model.heads import HeadOutputs
from pipeline_checks.model.losses import LossFacts
from pipeline_checks.results.verdict import Finding

SHOWN_CLASSES = 3  # missing classes named in a message; the rest counted


# -- the labels ----------------------------------------------------------------------------


def labels_out_of_range(split: str, raw, low: int, high: int) -> Finding:
    """`split`'s labels run low..high, outside [0, raw.classes)."""
    outside = int(((raw.labels < 0) | (raw.labels >= raw.classes)).sum())
    one_based = low == 1 and high == raw.classes
    return Finding(
        f"{split} labels run {low}..{high} for {raw.classes} classes",
        f"class_names has {raw.classes} names, so labels must be 0..{raw.classes - 1}; {outside} of "
        f"{len(raw.labels)} labels are outside{': the labels are 1-based' if one_based else ''}. Keras raises "
        "no error while the model has enough outputs, and trains on class indices that name no class",
        "subtract 1 from 1-based labels, or number the sorted class_names from 0 as image_dataset_from_directory does"
        if one_based
        else "map every label to its index in class_names, 0..C-1",
    )


def classes_missing(raw, present: list[int], held_out: int = 0) -> Finding:
    """The training labels name only the classes `present`: fewer than class_names has, or than two.
    `held_out`: how many last images fit's `validation_split` keeps out of training."""
    missing = [i for i in range(raw.classes) if i not in present]
    if len(present) == 1:
        effect = (
            "Fit, evaluate and every check that trains look healthy: the model reaches accuracy 1 by always "
            f"answering {present[0]}"
        )
    else:
        effect = "The model never sees a target for the missing classes, and fit and evaluate look healthy on the rest"
    if missing:
        guess = (
            f"A loader that labels every file {present[0]}?"
            if len(present) == 1
            else "A loader that drops or merges classes?"
        )
        if held_out:
            guess = (
                f"fit_kwargs validation_split holds out the last {held_out} images, before fit shuffles: "
                "on arrays sorted by class, whole classes"
            )
        why = f"{guess} No training image is labelled {_listed_or(f'{i} ({raw.class_names[i]!r})' for i in missing)}"
    else:
        why = (
            f"class_names has only {raw.classes} name, and a classifier needs at least 2 classes "
            "(a loader that found one class folder?)"
        )
    return Finding(
        f"training labels cover {len(present)} of {raw.classes} classes ({listed(present)})",
        f"{why}. {effect}",
        (
            "shuffle the arrays once before fit (validation_split takes the last images as they are), or pass "
            "validation_data"
            if held_out
            else "label each image with the index of its class in class_names (image_dataset_from_directory "
            "does, from one folder per class), and give the training data images of every class"
        ),
    )


def class_order_differs(train_names, validation_names) -> Finding:
    """The splits list different class names, or the same in another order."""
    missing = [n for n in train_names if n not in validation_names]
    extra = [n for n in validation_names if n not in train_names]
    shifted = [
        f"{n!r} is {train_names.index(n)} in training but {validation_names.index(n)} in validation"
        for n in train_names
        if n in validation_names and train_names.index(n) != validation_names.index(n)
    ]
    parts = [f"training has {len(train_names)} classes, validation {len(validation_names)}"]
    if missing:
        parts.append(
            "missing from validation: "
            + ", ".join(f"{n!r} (index {train_names.index(n)} in training)" for n in missing)
        )
    if extra:
        parts.append("only in validation: " + ", ".join(f"{n!r} (index {validation_names.index(n)})" for n in extra))
    if shifted:
        shift = "1 class index shifts: " if len(shifted) == 1 else f"{len(shifted)} class indices shift: "
        parts.append(shift + "; ".join(shifted))
    if missing:
        first = f"class {missing[0]!r} is missing from validation_data"
    elif extra:
        first = f"class {extra[0]!r} is only in validation_data"
    else:
        first = "validation_data orders the classes differently"
    return Finding(
        f"{first}, so class indices differ between the splits",
        "; ".join(parts) + ". Validation then scores right predictions as wrong",
        "read every split with the training split's class names (class_names=... in "
        "image_dataset_from_directory) so an index means one class everywhere, and give every split images of "
        "every class",
    )


def validation_labels_moved(compared: LabelComparison, unnamed: bool) -> Finding:
    """The trained model predicts validation's labels, consistently, as other training labels."""
    moved = compared.moved
    mapping = ", ".join(f"{j}->{k}" for j, k in moved.items())
    seen = "; ".join(
        f"{compared.validation[j].seen('validation')}, {compared.training[j].seen('training')}" for j in moved
    )
    kind = "permuted" if compared.permutation else "shifted onto other labels"
    names = (
        "Both splits have only class indices, no names, so the names cannot tell"
        if unnamed
        else "Both splits list the same class names, so the names cannot tell"
    )
    return Finding(
        f"validation_data's labels look {kind}: {mapping}",
        f"the trained model predicts {compared.fitted} of {compared.images} training images as their own label, "
        f"but predicts {seen}: validation was labelled from another class list or order (one "
        f"reversed, or each split's own listing of class folders). {names}. fit's val_accuracy then scores right "
        "predictions as wrong, and early stopping or checkpoints on it pick the wrong epochs",
        "label validation_data with the training split's class list, in its order: one name -> index mapping "
        "for every split (with image_dataset_from_directory pass class_names=train_ds.class_names, or sort the "
        "class folders)",
    )


def validation_labels_unjudged(compared: LabelComparison) -> str | None:
    """Why the trained model's predictions cannot judge validation's labels; None where they can."""
    why = None
    if not compared.model_fits:
        wrong = [m.label for m in compared.training.values() if m.predicted != m.label]
        label = "labels" if len(wrong) > 1 else "label"
        which = f", and most images of training {label} {listed(wrong)} as another label" if wrong else ""
        why = (
            f"the model predicts only {compared.fitted} of {compared.images} training images as their own label"
            f"{which} (it must fit {FIT_SHARE:.0%} of them, and most of every label)"
        )
    elif len(compared.judged) < 2:
        why = (
            f"fewer than 2 validation labels have {MIN_IMAGES} images or more, most of them predicted as one "
            f"label ({len(compared.judged)} of {len(compared.validation)})"
        )
    return None if why is None else f"validation labels not compared with the trained model's predictions: {why}"


def validation_labels_agree(compared: LabelComparison) -> str:
    judged = compared.judged
    images = sum(m.images for m in judged.values())
    agreeing = sum(m.count for m in judged.values())
    return (
        f"the trained model predicts validation labels {listed(judged, shown=len(judged))} mostly as themselves "
        f"({agreeing} of {images} images), as it predicts {compared.fitted} of {compared.images} training images"
    )


def validation_labels_mixed(compared: LabelComparison) -> str:
    """Some validation labels predicted mostly as others, but no one-to-one mapping: generalization, not labels."""
    others = [m for m in compared.judged.values() if m.predicted != m.label]
    return (
        f"the trained model predicts {'; '.join(m.seen('validation') for m in others)}, but the validation labels "
        "do not map one to one onto other training labels, most of them moved: not failed (a model that "
        "generalizes badly to these images, not a validation split labelled from another class list)"
    )


# -- the head ------------------------------------------------------------------------------


def encoding_mismatch(loss: LossFacts, label_encoding: str, targets, classes: int) -> Finding:
    if label_encoding == "sparse":
        detail = (
            f"fit receives class indices of shape {targets.shape} but {loss.name} expects one-hot "
            f"targets of shape ({len(targets)}, {classes}). Keras 3 raises at the first fit or evaluate: "
            "'Arguments `target` and `output` must have the same rank'"
        )
        fix = (
            "compile with loss='sparse_categorical_crossentropy', or set label_encoding='one_hot' and one-hot "
            "the labels"
        )
    else:
        detail = (
            f"fit receives one-hot targets of shape {targets.shape} but {loss.name} expects class indices "
            f"of shape ({len(targets)},). Keras 3 raises at the first fit or evaluate: 'Argument `output` must "
            "have rank (ndim) `target.ndim - 1`'"
        )
        fix = "compile with loss='categorical_crossentropy', or set label_encoding='sparse' and pass class indices"
    return Finding(f"{loss.name} does not match {label_encoding.replace('_', '-')} labels", detail, fix)


def categorical_on_one_unit(loss: LossFacts, raw) -> Finding:
    if loss.kind == "sparse":
        detail = (
            "sparse_categorical_crossentropy scores class k with output k, and the model has only output 0: "
            "the images of class 1 have no score. Keras on TensorFlow raises 'Received a label value of 1 which "
            "is outside the valid range of [0, 1)'; other backends may add no loss for them instead"
        )
    else:
        detail = (
            f"{loss.name} normalizes the outputs over the classes, and over one unit that gives 1 for every "
            "image: the loss is 0 whatever the labels and cannot tell the classes apart. JAX and PyTorch get no "
            "gradient at all; TensorFlow's fused softmax op still returns 1 - label, which only pushes the "
            "outputs of class 0 down"
        )
    return Finding(
        f"{loss.name} on a single output for {raw.classes} classes",
        detail,
        "for two classes and one unit compile with loss='binary_crossentropy' (BinaryCrossentropy(from_logits=True) "
        "for a unit without sigmoid) and 0/1 labels; or give the last layer 2 softmax units and keep the "
        "categorical loss",
    )


def softmax_over_one_unit(loss: LossFacts, outputs: HeadOutputs) -> Finding:
    """The last layer is a softmax over one unit: exp(z) / exp(z), 1.0 for any input."""
    # Keras on TensorFlow computes a cross-entropy from the logit beneath a softmax output (its
    # `_keras_logits`), so fit may train that logit while predict's outputs stay 1.0.
    beneath = (
        f". Keras on TensorFlow computes {loss.name} from the logit beneath the softmax instead, so fit's loss "
        "may fall and the weights change while every prediction stays 1.0"
        if loss.crossentropy
        else ""
    )
    return Finding(
        "a softmax over the single output unit: the model outputs 1.0 for every image",
        f"softmax divides each unit's exp(z) by the sum over the row's units, and over one unit that is "
        f"exp(z) / exp(z) = 1 whatever the input ({outputs.described()}). predict returns the same class for every "
        "image whatever the weights, and no gradient flows back through the softmax (its derivative p (1 - p) is "
        f"0 at p = 1){beneath}. Keras 3 only warns ('softmax over axis -1 ... This axis has size 1')",
        "for two classes and one unit use activation='sigmoid' with loss='binary_crossentropy' and 0/1 labels; "
        "or give the last layer 2 softmax units with loss='sparse_categorical_crossentropy' (class indices) or "
        "'categorical_crossentropy' (one-hot labels)",
    )


def regression_loss_on_classifier(loss: LossFacts, outputs: HeadOutputs, label_encoding: str, targets, raw) -> Finding:
    """A regression loss (squared or absolute error, ...) on softmax or sigmoid outputs with class targets."""
    width = outputs.width
    softmax = outputs.activation == "softmax" or (outputs.activation is None and outputs.softmax_rows)
    activation = "softmax" if softmax else "sigmoid"
    head = f"a {width}-unit softmax" if softmax else ("a sigmoid unit" if width == 1 else f"{width} sigmoid units")
    if targets.ndim == 1 and width > 1:
        compared = (
            f"fit receives one class index per image, shape {targets.shape}, and {loss.name} broadcasts it against "
            f"each of the {width} outputs: every probability is trained towards the class index itself "
            f"(0..{raw.classes - 1}), which no probability above 1 can reach"
        )
    else:
        compared = f"{loss.name} scores each probability's distance from its 0/1 target as a number"
    if softmax:
        crossentropy = "sparse_categorical_crossentropy" if label_encoding == "sparse" else "categorical_crossentropy"
    else:
        crossentropy = "binary_crossentropy"
    return Finding(
        f"{loss.name} on {head} with class labels",
        f"{compared}. A regression loss's gradient through the {activation} is scaled by the {activation}'s "
        "derivative (for squared error, 2 (p - y) p (1 - p)), which vanishes wherever an output saturates, right "
        "or wrong: a confidently wrong image stops learning, and training is slow or stalls where cross-entropy's "
        "gradient, p - y, is not. A learning rate raised to make up for it makes training unstable instead",
        f"compile with loss='{crossentropy}', the cross-entropy for {head} and "
        f"{label_encoding.replace('_', '-')} labels; keep {loss.name} for a linear output that regresses a number",
    )


def binary_on_sparse(loss: LossFacts, targets, width: int, classes: int, softmax: bool) -> Finding:
    one_unit = (
        " (or, for 2 classes, keep it on one sigmoid unit: Dense(1, activation='sigmoid'))" if classes == 2 else ""
    )
    return Finding(
        f"{loss.name} on {width} {'softmax ' if softmax else ''}outputs with sparse labels",
        f"fit receives one class index per image, shape {targets.shape}, but {loss.name} compares a 0/1 target "
        f"with each output, and the model has {width}: Keras 3 raises 'Arguments `target` and `output` must have "
        "the same rank'; where it broadcasts instead, every output is trained towards the class index itself",
        "for one class per image compile with loss='sparse_categorical_crossentropy' on the softmax "
        f"outputs{one_unit}; "
        "binary cross-entropy on several outputs needs one 0/1 target per output (label_encoding='one_hot')",
    )


def binary_one_hot_on_one_unit(loss: LossFacts, targets) -> Finding:
    return Finding(
        f"{loss.name} on a single output with one-hot targets of shape {targets.shape}",
        f"the one unit is compared with {targets.shape[1]} target columns: Keras 3 raises 'Arguments `target` and "
        "`output` must have the same shape'; where it broadcasts instead, the columns [1, 0] and [0, 1] pull the "
        "unit both ways and it learns 0.5 for every image",
        "pass sparse 0/1 labels (label_encoding='sparse') to the single sigmoid unit, or give the last layer 2 "
        "softmax units with loss='categorical_crossentropy'",
    )


def binary_on_softmax(loss: LossFacts, width: int) -> Finding:
    chance = 1 - 1 / width
    return Finding(
        f"{loss.name} on a {width}-unit softmax",
        f"binary cross-entropy scores each of the {width} softmax outputs as a yes/no probability of its own, "
        f"but a softmax makes them compete: the loss starts near {_uniform_binary_loss(width):.3g}, not ln {width}, "
        f"and metrics=['accuracy'] resolves to binary accuracy, which counts each output against its 0/1 target: "
        f"a model that knows nothing scores {chance:.2f}. Keras on TensorFlow even sees through a softmax layer and "
        "computes the loss from the logits beneath it, as independent sigmoids, so what fit trains is not what "
        "predict returns",
        "for one class per image compile with loss='categorical_crossentropy' (one-hot labels) or "
        "'sparse_categorical_crossentropy' (label_encoding='sparse'); keep binary_crossentropy only for "
        "independent sigmoid outputs (several labels per image)",
    )


def from_logits_on_probabilities(loss: LossFacts, outputs: HeadOutputs) -> Finding:
    if loss.kind == "binary":
        activation, effect = (
            "sigmoid",
            "squeezes every output into [0.5, 0.73], so no image can score below 0.5 in the loss, and shrinks "
            "its gradients",
        )
    else:
        activation, effect = "softmax", f"squeezes the loss towards ln {outputs.width} and shrinks its gradients"
    return Finding(
        "from_logits=True on outputs that are already probabilities",
        f"the model outputs probabilities ({outputs.described()}) and the loss applies {activation} again, "
        f"which {effect}. "
        f"Keras 3 on TensorFlow sees through a {activation} layer, warns and uses the logits beneath; JAX and "
        f"PyTorch, subclassed models and any loss computed from predict outputs apply {activation} twice",
        f"compile the loss with from_logits=False, or drop the {activation} from the last layer and keep "
        "from_logits=True",
    )


def probabilities_from_logits(loss: LossFacts, outputs: HeadOutputs) -> Finding:
    if loss.kind == "binary":
        treated = "clips each to [1e-7, 1 - 1e-7]: outputs outside [0, 1] lose their gradient"
        fix = (
            "compile with BinaryCrossentropy(from_logits=True) (and BinaryAccuracy(threshold=0.0), which reads "
            "logits), or add activation='sigmoid' to the last layer"
        )
    else:
        treated = "divides each row by its sum and clips it to [1e-7, 1 - 1e-7]"
        fix = "compile the loss with from_logits=True, or add activation='softmax' to the last layer"
    return Finding(
        "from_logits=False on outputs that are not probabilities",
        f"the model outputs logits ({outputs.described()}) and the loss takes them for probabilities: Keras "
        f"{treated}, so the loss and its gradients are wrong",
        fix,
    )


def _listed_or(items) -> str:
    """'a', 'a or b', 'a, b or c', 'a, b, c or 4 more'."""
    items = [str(item) for item in items]
    if len(items) <= SHOWN_CLASSES:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
    return ", ".join(items[:SHOWN_CLASSES]) + f" or {len(items) - SHOWN_CLASSES} more"


def _uniform_binary_loss(width: int) -> float:
    """Binary cross-entropy of a uniform softmax (1/W each) against a one-hot row, averaged over the W outputs."""
    p = 1 / width
    return (-math.log(p) - (width - 1) * math.log(1 - p)) / width
