"""Check: labels, class names, the loss and the model's outputs agree on what a class index means.

Most of these bugs train without an error: 1-based labels with one output too many, a
softmax applied twice, a validation split whose class indices shifted. None needs
training: the check reads the data, builds the model once from the seed, runs it on one
batch and measures the loss before the first step.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

import numpy as np

from pipeline_checks._validation import check_number
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.model.passes import initial_loss
from pipeline_checks.results.check_result import CheckResult, failed, passed

NAME = "labels"
DEFAULT_INITIAL_LOSS_FACTOR = 3.0
SUMS_TO_ONE = 1e-3  # softmax rows sum to 1 within float32 rounding; logits almost never do
LARGE_HEAD_GAIN = 3.0  # Glorot's gain std * sqrt(fan_in) is at most sqrt(2)
CROSSENTROPIES = ("sparse_categorical_crossentropy", "categorical_crossentropy")


def check_labels(pipeline, seed: int = 0, initial_loss_factor: float = DEFAULT_INITIAL_LOSS_FACTOR) -> CheckResult:
    """Fail when labels, class names, the compiled loss and the model's outputs disagree.

    Five parts, none of which trains:

    - **Loss vs label encoding.** Sparse labels with `categorical_crossentropy`, or one-hot
      labels with `sparse_categorical_crossentropy`. Keras 3 raises a shape error for both
      at the first `fit` or `evaluate`; the check names the mismatch and its fix first.
    - **Label range and output width.** Labels must lie in `[0, len(class_names))` and the
      model must output one score per class. 1-based labels 1..C with a C+1-output model
      train without an error: output 0 is never a target.
    - **from_logits.** The model's outputs on one batch show whether they are
      probabilities (non-negative rows summing to 1), which works for subclassed models
      too: `from_logits=True` on a softmax output applies softmax twice (Keras 3 on
      TensorFlow sees through a softmax layer, warns and uses its logits; other backends,
      and any loss computed from `predict` outputs, do not); `from_logits=False` on logits
      makes Keras normalize and clip them as if they were probabilities.
    - **Class order across splits.** With `validation_data`, both splits must list the same
      `class_names` in the same order: a class missing from one directory split shifts
      every index after it.
    - **Loss at initialization.** A freshly initialized classifier predicts about
      uniformly, so its cross-entropy starts near ln C (C outputs) whatever the label
      balance. The loss of a training-mode pass before any step, from the same seed as the
      shared training run (so equal to its `initial_loss`), must not exceed
      `initial_loss_factor` x ln C. Measured on 3 classes: 1.15 to 1.78 x ln C for correct
      pipelines (MobileNetV2, InceptionV3, the small CNN, DenseNet121, ResNet50; the small
      CNN 1.9 x with Keras 3's initial weights on torch), 6.7 x for
      `from_logits=False` on logits and 8.3 x for raw 0..255 pixels into a model without
      normalization; the default factor 3 lies between. A loss well below ln C is no bug:
      `build_model` may return a model already trained on the task. Checked for the plain
      categorical cross-entropies only, whose uniform-prediction loss is ln C.

    Args:
        pipeline: a `Pipeline`.
        seed: seeds the model's initialization, as the shared training run does.
        initial_loss_factor: the loss at initialization may be at most this many times
            ln C; a number greater than 1.

    Returns:
        A `CheckResult`; on failure its details name each disagreement, its likely cause
        and the fix.

    Example:
        >>> check_labels(pipeline).raise_if_failed()
    """
    pipeline, seed = checked_pipeline(pipeline), checked_seed(seed)
    factor = check_number("initial_loss_factor", initial_loss_factor, "a number greater than 1", low=1, low_open=True)
    from pipeline_checks.model import compat

    raw, validation = pipeline.raw_data(), pipeline.raw_validation_data()
    x_train, y_train = pipeline.train_inputs(raw.images), pipeline.targets(raw)
    x_infer = pipeline.infer_inputs(raw.images[: pipeline.batch_size])
    compat.set_random_seed(seed)  # after preprocessing, as training_run.train does: the same initial weights
    model = pipeline.fresh_model()

    report = _Report(raw.classes)
    report.label_range("data", raw)
    if validation is not None:
        report.label_range("validation_data", validation)
        report.class_order(raw.class_names, validation.class_names)
    loss = _loss_facts(getattr(model, "loss", None))
    report.numbers.update(loss=loss.name, from_logits=loss.from_logits)
    report.loss_encoding(loss, pipeline.label_encoding, y_train)
    report.outputs(compat.to_numpy(model(x_infer, training=False)), loss, raw, y_train, _last_activation(model))
    report.initial_loss(loss, functools.partial(initial_loss, model, x_train, y_train, pipeline.batch_size), factor, x_train, model)

    notes = "\n".join(f"  {note}" for note in report.notes)
    if report.findings:
        details = "\n".join(str(f) for f in report.findings) + (f"\n{notes}" if notes else "")
        return failed(NAME, pipeline, "; ".join(f.summary for f in report.findings), details, **report.numbers)
    return passed(NAME, pipeline, report.agreement(loss, pipeline.label_encoding), notes, **report.numbers)


@dataclass(frozen=True)
class _Finding:
    summary: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"  {self.summary}: {self.detail}\n    Fix: {self.fix}"


@dataclass(frozen=True)
class _Loss:
    """What the compiled loss expects: `encoding` "sparse", "one_hot", or None when not categorical."""

    name: str
    encoding: str | None
    from_logits: bool | None
    crossentropy: bool  # a plain categorical cross-entropy: ln C for uniform predictions


@dataclass
class _Report:
    """The findings of each part, in order, and the numbers behind them."""

    classes: int
    numbers: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    width: int | None = None
    loss_computable: bool = True  # False where Keras raises on these labels, so no loss exists

    def __post_init__(self):
        self.numbers["classes"] = self.classes

    def label_range(self, split: str, raw) -> None:
        low, high = int(raw.labels.min()), int(raw.labels.max())
        self.numbers[f"{split}_labels"] = (low, high)
        if 0 <= low and high < raw.classes:
            return
        outside = int(((raw.labels < 0) | (raw.labels >= raw.classes)).sum())
        one_based = low == 1 and high == raw.classes
        self.findings.append(_Finding(
            f"{split} labels run {low}..{high} for {raw.classes} classes",
            f"class_names has {raw.classes} names, so labels must be 0..{raw.classes - 1}; {outside} of "
            f"{len(raw.labels)} labels are outside{': the labels are 1-based' if one_based else ''}. Keras raises "
            "no error while the model has enough outputs, and trains on class indices that name no class",
            "subtract 1 from 1-based labels, or number the sorted class_names from 0 as "
            "image_dataset_from_directory does" if one_based else "map every label to its index in class_names, 0..C-1",
        ))

    def class_order(self, train_names, validation_names) -> None:
        self.numbers["validation_classes"] = len(validation_names)
        if tuple(train_names) == tuple(validation_names):
            return
        missing = [n for n in train_names if n not in validation_names]
        extra = [n for n in validation_names if n not in train_names]
        shifted = [
            f"{n!r} is {train_names.index(n)} in training but {validation_names.index(n)} in validation"
            for n in train_names
            if n in validation_names and train_names.index(n) != validation_names.index(n)
        ]
        parts = [f"training has {len(train_names)} classes, validation {len(validation_names)}"]
        if missing:
            parts.append("missing from validation: " + ", ".join(f"{n!r} (index {train_names.index(n)} in training)" for n in missing))
        if extra:
            parts.append("only in validation: " + ", ".join(f"{n!r} (index {validation_names.index(n)})" for n in extra))
        if shifted:
            parts.append(("1 class index shifts: " if len(shifted) == 1 else f"{len(shifted)} class indices shift: ") + "; ".join(shifted))
        if missing:
            first = f"class {missing[0]!r} is missing from validation_data"
        elif extra:
            first = f"class {extra[0]!r} is only in validation_data"
        else:
            first = "validation_data orders the classes differently"
        self.findings.append(_Finding(
            f"{first}, so class indices differ between the splits",
            "; ".join(parts) + ". Validation then scores right predictions as wrong",
            "read every split with the training split's class names (class_names=... in "
            "image_dataset_from_directory) so an index means one class everywhere, and give every split images of every class",
        ))

    def loss_encoding(self, loss: _Loss, label_encoding: str, targets) -> None:
        if loss.encoding is None or loss.encoding == label_encoding:
            return
        self.loss_computable = False
        if label_encoding == "sparse":
            detail = (
                f"fit receives class indices of shape {targets.shape} but {loss.name} expects one-hot "
                f"targets of shape ({len(targets)}, {self.classes}). Keras 3 raises at the first fit or evaluate: "
                "'Arguments `target` and `output` must have the same rank'"
            )
            fix = "compile with loss='sparse_categorical_crossentropy', or set label_encoding='one_hot' and one-hot the labels"
        else:
            detail = (
                f"fit receives one-hot targets of shape {targets.shape} but {loss.name} expects class indices "
                f"of shape ({len(targets)},). Keras 3 raises at the first fit or evaluate: 'Argument `output` must "
                "have rank (ndim) `target.ndim - 1`'"
            )
            fix = "compile with loss='categorical_crossentropy', or set label_encoding='sparse' and pass class indices"
        self.findings.append(_Finding(f"{loss.name} does not match {label_encoding.replace('_', '-')} labels", detail, fix))

    def outputs(self, outputs, loss: _Loss, raw, targets, last_activation: str | None) -> None:
        outputs = np.asarray(outputs, dtype=np.float64)
        if outputs.ndim != 2:
            self.notes.append(f"output width and from_logits not checked: outputs have shape {outputs.shape}, not (batch, classes)")
            return
        self.width = width = outputs.shape[1]
        self.numbers["output_width"] = width
        if int(raw.labels.max()) >= width or int(raw.labels.min()) < 0 or (targets.ndim == 2 and targets.shape[1] != width):
            self.loss_computable = False
        if width != raw.classes and not (width == 1 and raw.classes == 2):
            unused = sorted(set(range(width)) - set(raw.labels.tolist()))
            if width > raw.classes and unused:
                which = f"output {unused[0]} is" if len(unused) == 1 else f"outputs {', '.join(map(str, unused))} are"
                effect = f"; {which} never a target: the model spends probability on classes that do not exist"
            elif width > raw.classes:
                effect = "; the labels do not name the classes in class_names"
            else:
                effect = "; labels past the last output have no score, and Keras raises or trains on garbage"
            self.findings.append(_Finding(
                f"the model outputs {width} scores for {raw.classes} classes",
                f"class_names has {raw.classes} names but the last layer has {width} units{effect}",
                f"build the last layer with len(class_names) = {raw.classes} units",
            ))
        if width < 2 or loss.from_logits is None:
            return
        sums = outputs.sum(axis=1)
        probabilities = bool(outputs.min() >= -1e-6 and np.abs(sums - 1).max() <= SUMS_TO_ONE)
        self.numbers.update(outputs_are_probabilities=probabilities, output_row_sums=(float(sums.min()), float(sums.max())))
        seen = (
            f"outputs in [{outputs.min():.3g}, {outputs.max():.3g}], row sums {sums.min():.4f}..{sums.max():.4f}"
            + (f", last layer activation {last_activation}" if last_activation else "")
        )
        if loss.from_logits and probabilities:
            self.findings.append(_Finding(
                "from_logits=True on outputs that are already probabilities",
                f"the model outputs probabilities ({seen}) and the loss applies softmax again, which squeezes the "
                f"loss towards ln {width} and shrinks its gradients. Keras 3 on TensorFlow sees through a softmax "
                "layer, warns and uses the logits beneath; JAX and PyTorch, subclassed models and any loss "
                "computed from predict outputs apply softmax twice",
                "compile the loss with from_logits=False, or drop the softmax from the last layer and keep from_logits=True",
            ))
        elif not loss.from_logits and not probabilities:
            self.findings.append(_Finding(
                "from_logits=False on outputs that are not probabilities",
                f"the model outputs logits ({seen}) and the loss takes them for probabilities: Keras divides each "
                "row by its sum and clips it to [1e-7, 1 - 1e-7], so the loss and its gradients are wrong",
                "compile the loss with from_logits=True, or add activation='softmax' to the last layer",
            ))

    def initial_loss(self, loss: _Loss, measure, factor: float, x_train, model) -> None:
        if not loss.crossentropy:
            self.notes.append(f"loss at initialization not checked: {loss.name} is not a categorical cross-entropy")
            return
        if not self.loss_computable or self.width is None:
            self.notes.append("loss at initialization not measured: Keras cannot compute the loss of these labels")
            return
        initial, expected = measure(), math.log(self.width)
        self.numbers.update(initial_loss=initial, expected_initial_loss=expected)
        if math.isfinite(initial) and initial <= expected * factor:
            below = " (far below: build_model returns a model trained on this task?)" if initial < expected / factor else ""
            self.notes.append(f"loss at initialization {initial:.4g}, ln {self.width} = {expected:.4g}{below}")
            return
        ratio = f"{initial / expected:.2g}x ln {self.width}" if math.isfinite(initial) else "not finite"
        cause, fix = self._confident_cause(model, x_train)
        self.findings.append(_Finding(
            f"loss at initialization {initial:.4g}, expected about ln {self.width} = {expected:.3g}",
            f"{initial:.4g} is {ratio}, above {factor:g}x: a freshly initialized classifier predicts about "
            f"uniformly, so its loss starts near ln {self.width}. This model starts confidently wrong: {cause}",
            fix,
        ))

    def _confident_cause(self, model, x_train) -> tuple[str, str]:
        if any("from_logits" in f.summary for f in self.findings):
            return "the from_logits mismatch above", "fix from_logits as above"
        gain = _head_gain(model)
        if gain is not None and gain > LARGE_HEAD_GAIN:
            self.numbers["head_gain"] = gain
            return (
                f"its last layer starts with large weights (std x sqrt(fan_in) = {gain:.3g}, where Glorot's is at most 1.4; "
                "e.g. a head initialized for 1000 classes, as keras.applications.EfficientNet's, used for few)",
                "give the model a new head: include_top=False, pooling='avg' and a Dense(len(class_names)) with Keras' default initializer",
            )
        return (
            f"likely, large features reach its last layer: the training inputs span [{np.min(x_train):.4g}, "
            f"{np.max(x_train):.4g}] and nothing in the model normalizes them",
            "scale the inputs (e.g. / 255, or the application's preprocess_input) or add a Rescaling or Normalization layer",
        )

    def agreement(self, loss: _Loss, label_encoding: str) -> str:
        text = f"{label_encoding.replace('_', '-')} labels in 0..{self.classes - 1} for {self.classes} classes"
        if self.width is not None:
            text += f", {self.width} outputs"
        text += f", loss {loss.name}" + (f" (from_logits={loss.from_logits})" if loss.from_logits is not None else "")
        if "initial_loss" in self.numbers:
            text += f", loss at initialization {self.numbers['initial_loss']:.3g} (ln {self.width} = {self.numbers['expected_initial_loss']:.3g})"
        if "validation_classes" in self.numbers:
            text += "; validation lists the same classes in the same order"
        return text


def _loss_facts(loss) -> _Loss:
    """Name, expected label encoding and from_logits of `model.loss`: a string, a function or a Loss."""
    if loss is None or isinstance(loss, (list, tuple, dict)):
        return _Loss("none" if loss is None else "one loss per output", None, None, False)
    names = _loss_names(loss)
    categorical = [n for n in names if "categorical" in n]
    if not categorical:
        return _Loss(names[0] if names else repr(loss), None, None, False)
    name = next((n for n in categorical if n in CROSSENTROPIES), categorical[0])
    encoding = "sparse" if name.startswith("sparse") else "one_hot"
    return _Loss(name, encoding, _from_logits(loss), name in CROSSENTROPIES)


def _loss_names(loss) -> list[str]:
    if isinstance(loss, str):
        return [loss]
    if isinstance(loss, functools.partial):
        return _loss_names(loss.func)
    names = []
    wrapped = getattr(loss, "fn", None)  # Keras 3's LossFunctionWrapper
    if wrapped is not None:
        names.append(getattr(wrapped, "__name__", ""))
    if hasattr(loss, "get_config"):
        names += [str(loss.get_config().get("name", "")), _snake(type(loss).__name__)]
    else:
        names.append(getattr(loss, "__name__", ""))
    return [n for n in names if n]


def _from_logits(loss) -> bool:
    if isinstance(loss, functools.partial):
        return bool(loss.keywords.get("from_logits", _from_logits(loss.func)))
    if hasattr(loss, "get_config"):
        return bool(loss.get_config().get("from_logits", False))
    return False  # a string or a plain function: Keras' default


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _last_activation(model) -> str | None:
    """The last layer's activation, for the message; None for a subclassed model."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    activation = getattr(layers[-1], "activation", None)
    if activation is not None:
        return getattr(activation, "__name__", type(activation).__name__)
    return _snake(type(layers[-1]).__name__)


def _head_gain(model) -> float | None:
    """std(kernel) * sqrt(fan_in) of the last layer: how much it amplifies unit-scale features."""
    from pipeline_checks.model import compat

    layers = getattr(model, "layers", None)
    kernel = getattr(layers[-1], "kernel", None) if layers else None
    if kernel is None or len(kernel.shape) != 2:
        return None
    values = compat.to_numpy(kernel)
    return float(values.std() * math.sqrt(values.shape[0]))
