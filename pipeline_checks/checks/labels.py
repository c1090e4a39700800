"""Check: labels, class names, the loss and the model's outputs agree on what a class index means.

Most of these bugs train without an error: 1-based labels with one output too many, a
softmax applied twice, a validation split whose class indices shifted, a loader that gives
every file the same label, binary cross-entropy on a softmax. None needs training: the check
reads the data, builds the model once from the seed, runs it on one batch and measures the
loss before the first step.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks._validation import check_number
from pipeline_checks.checks.family import family
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.model.forward import forward
from pipeline_checks.model.losses import LossFacts, loss_facts, snake_case
from pipeline_checks.model.passes import initial_loss
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.run.builds import fresh_build

NAME = "labels"
DEFAULT_INITIAL_LOSS_FACTOR = 3.0
SUMS_TO_ONE = 1e-3  # softmax rows sum to 1 within float32 rounding; logits almost never do
IN_UNIT_RANGE = 1e-6  # sigmoid outputs lie in [0, 1] within float32 rounding
LARGE_HEAD_GAIN = 3.0  # Glorot's gain std * sqrt(fan_in) is at most sqrt(2)
UNIT_SCALE = 5.0  # inputs scaled to [0, 1], [-1, 1] or standardized stay within; raw pixels go to 255
RESCALING_LAYERS = ("Rescaling", "Lambda", "TFOpLambda")  # besides any *Normalization layer
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid", "hard_sigmoid")
SHOWN_CLASSES = 3  # missing classes named in a message; the rest counted


@family(NAME)
def check_labels(pipeline, seed: int = 0, initial_loss_factor: float = DEFAULT_INITIAL_LOSS_FACTOR) -> CheckResult:
    """Fail when labels, class names, the compiled loss and the model's outputs disagree.

    Five parts, none of which trains:

    - **Label range and coverage.** Labels must lie in `[0, len(class_names))`, and the
      training labels must name every class (at least two): a loader that labels every
      file 0 gives a model that fits, evaluates and overfits perfectly by always answering 0.
    - **The head fits the loss.** Three heads are right: C outputs with a categorical
      cross-entropy (sparse or one-hot labels as the loss expects); one output with
      `binary_crossentropy` and sparse 0/1 labels for two classes; C independent (sigmoid
      or logit) outputs with `binary_crossentropy` and one 0/1 target per output
      (multi-label, one-vs-rest). Anything else fails, e.g. `binary_crossentropy` on a
      3-unit softmax (each unit scored as a yes/no, and "accuracy" becomes binary
      accuracy: 0.67 for a model that knows nothing), or a categorical loss on one unit
      (its softmax is 1, so the loss is always 0). 1-based labels 1..C with a C+1-output
      model train without an error: output 0 is never a target.
    - **from_logits.** The outputs on one batch show whether they are probabilities
      (softmax rows summing to 1; sigmoid outputs in [0, 1] from a sigmoid layer), which
      works for subclassed models too: `from_logits=True` on probabilities applies softmax
      or sigmoid twice (Keras 3 on TensorFlow sees through the activation layer, warns and
      uses its logits; other backends, and any loss computed from `predict` outputs, do
      not); `from_logits=False` on logits makes Keras clip them as if they were
      probabilities.
    - **Class order across splits.** With `validation_data`, both splits must list the same
      `class_names` in the same order: a class missing from one directory split shifts
      every index after it.
    - **Loss at initialization.** A freshly initialized classifier predicts about
      uniformly, so its cross-entropy starts near ln C (C softmax outputs) or ln 2 (binary
      cross-entropy, per output) whatever the label balance. The data loss of a
      training-mode pass before any step is judged: the compiled loss (the shared run's
      `initial_loss`) less the model's regularization losses, which weight decay can make
      hundreds of times larger and which say nothing about the labels. Above
      `initial_loss_factor` x the uniform loss the check fails only for a cause it sees: a
      from_logits mismatch, or unscaled inputs, proven by the same model starting within
      the bound on the inputs divided by their largest magnitude. Without one it passes
      with a note: a residual net can start at 3.4 x ln 3 with nothing wrong, and a last
      layer with large initial weights (keras.applications.EfficientNet's own head, 6-8 x)
      is named as the reason, not failed. Measured on 3 classes: 1.15 to 1.78 x ln C for
      correct pipelines (MobileNetV2, InceptionV3, the small CNN, DenseNet121, ResNet50),
      up to 3.4 x for a two-block residual net; 6.7 x for `from_logits=False` on logits and
      8.3 x for raw 0..255 pixels into a model without normalization. A loss well below is
      no bug: `build_model` may return a model already trained on the task. Checked for
      the plain cross-entropies only.

    Args:
        pipeline: a `Pipeline`.
        seed: seeds the model's initialization, as the shared training run does.
        initial_loss_factor: the data loss at initialization may be at most this many times
            ln C (ln 2 for binary cross-entropy); a number greater than 1.

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
    x_train, y_train = pipeline.training_pairs(raw)
    x_infer = pipeline.infer_inputs(raw.images[: pipeline.batch_size])
    encoding = pipeline.encoding_of(y_train)
    model = fresh_build(pipeline, seed)  # the training run's initial model, shared with other checks

    report = _Report(raw.classes)
    if report.label_range("data", raw):
        report.classes_covered(raw)
    if validation is not None:
        report.label_range("validation_data", validation)
        report.class_order(raw.class_names, validation.class_names)
    loss = loss_facts(getattr(model, "loss", None))
    report.numbers.update(loss=loss.name, from_logits=loss.from_logits)
    outputs = _Outputs.of(compat.to_numpy(forward(model, x_infer, training=False)), _output_activation(model))
    report.head(outputs, loss, encoding, raw, y_train)
    report.from_logits(outputs, loss)
    measure = functools.partial(_initial_losses, model, y=y_train, batch_size=pipeline.batch_size)
    report.initial_loss(loss, measure, factor, x_train, model)

    notes = "\n".join(f"  {note}" for note in report.notes)
    if report.findings:
        details = "\n".join(str(f) for f in report.findings) + (f"\n{notes}" if notes else "")
        return failed(NAME, pipeline, "; ".join(f.summary for f in report.findings), details, **report.numbers)
    return passed(NAME, pipeline, report.agreement(loss, encoding), notes, **report.numbers)


@dataclass(frozen=True)
class _Finding:
    summary: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"  {self.summary}: {self.detail}\n    Fix: {self.fix}"


@dataclass(frozen=True)
class _Outputs:
    """The model's outputs on one batch, and what kind of scores they are."""

    values: np.ndarray
    activation: str | None  # of the layer that produces the model's output; None when unknown

    @classmethod
    def of(cls, values, activation: str | None) -> _Outputs:
        return cls(np.asarray(values, dtype=np.float64), activation)

    @property
    def width(self) -> int | None:
        return self.values.shape[1] if self.values.ndim == 2 else None

    @property
    def row_sums(self) -> np.ndarray:
        return self.values.sum(axis=1)

    @property
    def softmax_rows(self) -> bool:
        """Non-negative rows summing to 1: a softmax, or a probability distribution like one."""
        return bool(
            self.width
            and self.width > 1
            and self.values.min() >= -IN_UNIT_RANGE
            and np.abs(self.row_sums - 1).max() <= SUMS_TO_ONE
        )

    @property
    def sigmoid_probabilities(self) -> bool | None:
        """Whether each output is a probability of its own: True, False, or None when undecided.

        Outside [0, 1] they are logits. Inside, a fresh model's logits can lie there by
        chance (a Dense unit after ReLU features often starts small and of one sign), so
        the layer that produces them decides; a subclassed model's stays undecided.
        """
        if self.values.min() < -IN_UNIT_RANGE or self.values.max() > 1 + IN_UNIT_RANGE:
            return False
        if self.activation in PROBABILITY_ACTIVATIONS:
            return True
        return False if self.activation == "linear" else None

    def seen(self) -> str:
        text = f"outputs in [{self.values.min():.3g}, {self.values.max():.3g}]"
        if self.width and self.width > 1:
            text += f", row sums {self.row_sums.min():.4f}..{self.row_sums.max():.4f}"
        return text + (f", last layer activation {self.activation}" if self.activation else "")


@dataclass
class _Report:
    """The findings of each part, in order, and the numbers behind them."""

    classes: int
    numbers: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    width: int | None = None
    head_text: str = ""  # how the outputs are read, for the summary, where not one softmax score per class
    loss_computable: bool = True  # False where Keras raises on these labels, or the loss means nothing
    loss_unmeasured: str = "Keras cannot compute the loss of these labels"

    def __post_init__(self):
        self.numbers["classes"] = self.classes

    # -- labels --------------------------------------------------------------------------

    def label_range(self, split: str, raw) -> bool:
        """Whether `raw`'s labels lie in [0, classes); a finding when they do not."""
        low, high = int(raw.labels.min()), int(raw.labels.max())
        self.numbers[f"{split}_labels"] = (low, high)
        if 0 <= low and high < raw.classes:
            return True
        outside = int(((raw.labels < 0) | (raw.labels >= raw.classes)).sum())
        one_based = low == 1 and high == raw.classes
        self.findings.append(
            _Finding(
                f"{split} labels run {low}..{high} for {raw.classes} classes",
                f"class_names has {raw.classes} names, so labels must be 0..{raw.classes - 1}; {outside} of "
                f"{len(raw.labels)} labels are outside{': the labels are 1-based' if one_based else ''}. Keras raises "
                "no error while the model has enough outputs, and trains on class indices that name no class",
                "subtract 1 from 1-based labels, or number the sorted class_names from 0 as "
                "image_dataset_from_directory does"
                if one_based
                else "map every label to its index in class_names, 0..C-1",
            )
        )
        return False

    def classes_covered(self, raw) -> None:
        """The training labels must name every class in class_names, and at least two."""
        present = sorted({int(label) for label in raw.labels})
        self.numbers["data_classes_present"] = len(present)
        if len(present) >= max(raw.classes, 2):
            return
        missing = [i for i in range(raw.classes) if i not in present]
        effect = (
            f"Fit, evaluate and every check that trains look healthy: the model reaches accuracy 1 by always answering {present[0]}"
            if len(present) == 1
            else "The model never sees a target for the missing classes, and fit and evaluate look healthy on the rest"
        )
        if missing:
            guess = (
                f"A loader that labels every file {present[0]}?"
                if len(present) == 1
                else "A loader that drops or merges classes?"
            )
            why = (
                f"{guess} No training image is labelled {_listed_or(f'{i} ({raw.class_names[i]!r})' for i in missing)}"
            )
        else:
            why = f"class_names has only {raw.classes} name, and a classifier needs at least 2 classes (a loader that found one class folder?)"
        self.findings.append(
            _Finding(
                f"training labels cover {len(present)} of {raw.classes} classes ({listed(present)})",
                f"{why}. {effect}",
                "label each image with the index of its class in class_names (image_dataset_from_directory "
                "does, from one folder per class), and give the training data images of every class",
            )
        )

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
            parts.append(
                "missing from validation: "
                + ", ".join(f"{n!r} (index {train_names.index(n)} in training)" for n in missing)
            )
        if extra:
            parts.append(
                "only in validation: " + ", ".join(f"{n!r} (index {validation_names.index(n)})" for n in extra)
            )
        if shifted:
            parts.append(
                ("1 class index shifts: " if len(shifted) == 1 else f"{len(shifted)} class indices shift: ")
                + "; ".join(shifted)
            )
        if missing:
            first = f"class {missing[0]!r} is missing from validation_data"
        elif extra:
            first = f"class {extra[0]!r} is only in validation_data"
        else:
            first = "validation_data orders the classes differently"
        self.findings.append(
            _Finding(
                f"{first}, so class indices differ between the splits",
                "; ".join(parts) + ". Validation then scores right predictions as wrong",
                "read every split with the training split's class names (class_names=... in "
                "image_dataset_from_directory) so an index means one class everywhere, and give every split images of every class",
            )
        )

    # -- the head ------------------------------------------------------------------------

    def head(self, outputs: _Outputs, loss: LossFacts, label_encoding: str, raw, targets) -> None:
        """Output width against class_names, and the loss against the head and the labels."""
        if outputs.width is None:
            self.notes.append(
                f"output width and from_logits not checked: outputs have shape {outputs.values.shape}, not (batch, classes)"
            )
            self.loss_computable = False
            return
        self.width = width = outputs.width
        self.numbers["output_width"] = width
        self._width(width, raw)
        if loss.categorical:
            self._categorical_head(loss, label_encoding, targets, raw, width)
        elif loss.kind == "binary":
            self._binary_head(outputs, loss, label_encoding, targets, raw)
        if self.loss_computable and not _targets_fit(loss, targets, raw.labels, width):
            self.loss_computable = False

    def _width(self, width: int, raw) -> None:
        if width == raw.classes or (width == 1 and raw.classes == 2):
            return
        unused = sorted(set(range(width)) - set(raw.labels.tolist()))
        if width > raw.classes and unused:
            which = f"output {unused[0]} is" if len(unused) == 1 else f"outputs {', '.join(map(str, unused))} are"
            effect = f"; {which} never a target: the model spends probability on classes that do not exist"
        elif width > raw.classes:
            effect = "; the labels do not name the classes in class_names"
        else:
            effect = "; labels past the last output have no score, and Keras raises or trains on garbage"
        self.findings.append(
            _Finding(
                f"the model outputs {width} scores for {raw.classes} classes",
                f"class_names has {raw.classes} names but the last layer has {width} units{effect}",
                f"build the last layer with len(class_names) = {raw.classes} units",
            )
        )

    def _categorical_head(self, loss: LossFacts, label_encoding: str, targets, raw, width: int) -> None:
        if width == 1:
            if raw.classes == 2:  # with another class count the width finding above says it
                self._mismatch(_categorical_on_one_unit(loss, raw))
            return
        if loss.kind != label_encoding:
            self._mismatch(_encoding_mismatch(loss, label_encoding, targets, raw.classes))

    def _binary_head(self, outputs: _Outputs, loss: LossFacts, label_encoding: str, targets, raw) -> None:
        width = outputs.width
        if label_encoding == "sparse":
            if width == 1:
                self.head_text = "1 output (binary: one unit for 2 classes)"
            else:
                self._mismatch(_binary_on_sparse(loss, targets, width, raw.classes, outputs.softmax_rows))
            return
        if width != targets.shape[1]:
            if width == 1:  # other widths: the width finding above says it
                self._mismatch(_binary_one_hot_on_one_unit(loss, targets))
            return
        if outputs.softmax_rows and width > 2:
            self._mismatch(_binary_on_softmax(loss, width))
        elif outputs.softmax_rows:
            self.head_text = "2 softmax outputs scored as binary ones (the same loss as one sigmoid unit)"
        else:
            self.head_text = f"{width} independent outputs (multi-label, one-vs-rest)"
            self.notes.append(
                f"{width} independent outputs with {loss.name}: checked as one-vs-rest (multi-label) units; "
                "the pipeline's labels give one class per image, as label_encoding='one_hot' one-hot rows"
            )

    def _mismatch(self, finding: _Finding) -> None:
        self.findings.append(finding)
        self.loss_computable = False
        self.loss_unmeasured = "the loss does not fit the head (above)"

    # -- from_logits ---------------------------------------------------------------------

    def from_logits(self, outputs: _Outputs, loss: LossFacts) -> None:
        if loss.from_logits is None or outputs.width is None:
            return
        if loss.kind == "binary":
            probabilities = outputs.sigmoid_probabilities
        elif outputs.width > 1:
            probabilities = outputs.softmax_rows
        else:
            return  # a categorical loss on one unit: the head finding says it
        self.numbers["outputs_are_probabilities"] = probabilities
        if outputs.width > 1:
            self.numbers["output_row_sums"] = (float(outputs.row_sums.min()), float(outputs.row_sums.max()))
        if probabilities is None:
            self.notes.append(
                f"from_logits not judged: the {outputs.seen()} could be probabilities or logits, and the layer "
                "that produces the model's output is not known (a subclassed model, or an op after the last layer)"
            )
        elif loss.from_logits and probabilities:
            self.findings.append(_from_logits_on_probabilities(loss, outputs))
        elif not loss.from_logits and not probabilities:
            self.findings.append(_probabilities_from_logits(loss, outputs))

    # -- loss at initialization ----------------------------------------------------------

    def initial_loss(self, loss: LossFacts, measure, factor: float, x_train, model) -> None:
        """The data loss before any step against ln C (ln 2 for binary), and, above the bound, its cause.

        `measure(x)` returns the compiled loss of a training-mode pass on inputs `x` and the
        regularization in it.
        """
        if not loss.crossentropy:
            self.notes.append(f"loss at initialization not checked: {loss.name} is not a plain cross-entropy")
            return
        if not self.loss_computable or self.width is None:
            self.notes.append(f"loss at initialization not measured: {self.loss_unmeasured}")
            return
        total, regularization = measure(x_train)
        data = total - regularization
        uniform, expected = ("2", math.log(2)) if loss.kind == "binary" else (str(self.width), math.log(self.width))
        self.numbers.update(
            initial_loss=total,
            initial_data_loss=data,
            initial_regularization_loss=regularization,
            expected_initial_loss=expected,
            uniform_outputs=int(uniform),
        )
        share = (
            f" (data loss; the compiled loss {total:.4g} adds regularization {regularization:.4g})"
            if regularization
            else ""
        )
        seen = f"loss at initialization {data:.4g}{share}, ln {uniform} = {expected:.4g}"
        if math.isfinite(data) and data <= expected * factor:
            below = (
                " (far below: build_model returns a model trained on this task?)" if data < expected / factor else ""
            )
            self.notes.append(seen + below)
            return
        ratio = f"{data / expected:.2g}x ln {uniform}" if math.isfinite(data) else "not finite"
        found = self._confident_cause(model, x_train, measure, expected * factor)
        gain = _head_gain(model)
        if found is None and math.isfinite(data) and gain is not None and gain > LARGE_HEAD_GAIN:
            # A large head (keras.applications.EfficientNet's own, built with weights=None) makes a
            # fresh model confident whatever the labels: a choice of initialization, not a labels bug.
            self.numbers.update(head_gain=gain, initial_loss_cause="head_gain")
            self.notes.append(
                f"{seen}: {ratio}, above {factor:g}x, because its last layer starts with large weights "
                f"(std x sqrt(fan_in) = {gain:.3g}, where Glorot's is at most 1.4, as keras.applications.EfficientNet's "
                "own head); not failed: that is the initialization, not the labels"
            )
            return
        if found is None and math.isfinite(data):
            # A deep or residual net (identity shortcuts add up) can start confident with nothing wrong.
            self.numbers["initial_loss_cause"] = None
            judged = "fits the outputs" if self.numbers.get("outputs_are_probabilities") is not None else "not judged"
            self.notes.append(
                f"{seen}: {ratio}, above {factor:g}x, but no cause shows (from_logits {judged}, the last layer's "
                f"gain is {_described_gain(model)}, the inputs span [{np.min(x_train):.4g}, {np.max(x_train):.4g}]); "
                "not failed: a deep or residual model can start this confident"
            )
            return
        cause, fix = found or (
            "the loss is not finite before the first step",
            "see the numerics check for where NaN or Inf first appears",
        )
        self.findings.append(
            _Finding(
                f"loss at initialization {data:.4g}, expected about ln {uniform} = {expected:.3g}",
                f"{data:.4g}{share} is {ratio}, above {factor:g}x: a freshly initialized classifier predicts about "
                f"uniformly, so its loss starts near ln {uniform}. This model starts confidently wrong: {cause}",
                fix,
            )
        )

    def _confident_cause(self, model, x_train, measure, bound: float) -> tuple[str, str] | None:
        """What makes a fresh model confidently wrong, where one shows; None where none does."""
        if any("from_logits" in f.summary for f in self.findings):
            self.numbers["initial_loss_cause"] = "from_logits"
            return "the from_logits mismatch above", "fix from_logits as above"
        return self._input_scale_cause(model, x_train, measure, bound)

    def _input_scale_cause(self, model, x_train, measure, bound: float) -> tuple[str, str] | None:
        """Unscaled inputs, proven: the same model on the inputs divided by their largest magnitude starts within the bound.

        Only where the inputs lie beyond unit scale and no layer of the model rescales them
        itself (there, dividing the inputs again would make the model's own inputs tiny and
        its outputs uniform whatever the cause).
        """
        low, high = float(np.min(x_train)), float(np.max(x_train))
        span = max(abs(low), abs(high))
        if not span > UNIT_SCALE or _rescaling_layers(model):
            return None
        scaled_total, scaled_regularization = measure((np.asarray(x_train) / span).astype(np.float32))
        scaled = scaled_total - scaled_regularization
        self.numbers["initial_data_loss_on_scaled_inputs"] = scaled
        if not (math.isfinite(scaled) and scaled <= bound):
            return None
        self.numbers["initial_loss_cause"] = "input_scale"
        return (
            f"large features reach its last layer: the training inputs span [{low:.4g}, {high:.4g}] and no layer in "
            f"the model rescales or normalizes them; divided by {span:.4g}, the same model starts at {scaled:.3g}",
            "scale the inputs (e.g. / 255, or the application's preprocess_input) or add a Rescaling or Normalization layer",
        )

    def agreement(self, loss: LossFacts, label_encoding: str) -> str:
        text = f"{label_encoding.replace('_', '-')} labels in 0..{self.classes - 1} for {self.classes} classes"
        if self.width is not None:
            text += f", {self.head_text or f'{self.width} outputs'}"
        text += f", loss {loss.name}" + (f" (from_logits={loss.from_logits})" if loss.from_logits is not None else "")
        if "initial_loss" in self.numbers:
            numbers = self.numbers
            data, regularization = numbers["initial_data_loss"], numbers["initial_regularization_loss"]
            text += f", loss at initialization {data:.3g}"
            text += f" + regularization {regularization:.3g}" if regularization else ""
            text += f" (ln {numbers['uniform_outputs']} = {numbers['expected_initial_loss']:.3g})"
        if "validation_classes" in self.numbers:
            text += "; validation lists the same classes in the same order"
        return text


# -- findings about the head ---------------------------------------------------------------


def _encoding_mismatch(loss: LossFacts, label_encoding: str, targets, classes: int) -> _Finding:
    if label_encoding == "sparse":
        detail = (
            f"fit receives class indices of shape {targets.shape} but {loss.name} expects one-hot "
            f"targets of shape ({len(targets)}, {classes}). Keras 3 raises at the first fit or evaluate: "
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
    return _Finding(f"{loss.name} does not match {label_encoding.replace('_', '-')} labels", detail, fix)


def _categorical_on_one_unit(loss: LossFacts, raw) -> _Finding:
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
    return _Finding(
        f"{loss.name} on a single output for {raw.classes} classes",
        detail,
        "for two classes and one unit compile with loss='binary_crossentropy' (BinaryCrossentropy(from_logits=True) "
        "for a unit without sigmoid) and 0/1 labels; or give the last layer 2 softmax units and keep the categorical loss",
    )


def _binary_on_sparse(loss: LossFacts, targets, width: int, classes: int, softmax: bool) -> _Finding:
    one_unit = (
        " (or, for 2 classes, keep it on one sigmoid unit: Dense(1, activation='sigmoid'))" if classes == 2 else ""
    )
    return _Finding(
        f"{loss.name} on {width} {'softmax ' if softmax else ''}outputs with sparse labels",
        f"fit receives one class index per image, shape {targets.shape}, but {loss.name} compares a 0/1 target "
        f"with each output, and the model has {width}: Keras 3 raises 'Arguments `target` and `output` must have "
        "the same rank'; where it broadcasts instead, every output is trained towards the class index itself",
        f"for one class per image compile with loss='sparse_categorical_crossentropy' on the softmax outputs{one_unit}; "
        "binary cross-entropy on several outputs needs one 0/1 target per output (label_encoding='one_hot')",
    )


def _binary_one_hot_on_one_unit(loss: LossFacts, targets) -> _Finding:
    return _Finding(
        f"{loss.name} on a single output with one-hot targets of shape {targets.shape}",
        f"the one unit is compared with {targets.shape[1]} target columns: Keras 3 raises 'Arguments `target` and "
        "`output` must have the same shape'; where it broadcasts instead, the columns [1, 0] and [0, 1] pull the "
        "unit both ways and it learns 0.5 for every image",
        "pass sparse 0/1 labels (label_encoding='sparse') to the single sigmoid unit, or give the last layer 2 "
        "softmax units with loss='categorical_crossentropy'",
    )


def _binary_on_softmax(loss: LossFacts, width: int) -> _Finding:
    chance = 1 - 1 / width
    return _Finding(
        f"{loss.name} on a {width}-unit softmax",
        f"binary cross-entropy scores each of the {width} softmax outputs as a yes/no probability of its own, "
        f"but a softmax makes them compete: the loss starts near {_uniform_binary_loss(width):.3g}, not ln {width}, "
        f"and metrics=['accuracy'] resolves to binary accuracy, which counts each output against its 0/1 target: "
        f"a model that knows nothing scores {chance:.2f}. Keras on TensorFlow even sees through a softmax layer and "
        "computes the loss from the logits beneath it, as independent sigmoids, so what fit trains is not what predict returns",
        "for one class per image compile with loss='categorical_crossentropy' (one-hot labels) or "
        "'sparse_categorical_crossentropy' (label_encoding='sparse'); keep binary_crossentropy only for "
        "independent sigmoid outputs (several labels per image)",
    )


def _from_logits_on_probabilities(loss: LossFacts, outputs: _Outputs) -> _Finding:
    if loss.kind == "binary":
        activation, effect = (
            "sigmoid",
            "squeezes every output into [0.5, 0.73], so no image can score below 0.5 in the loss, and shrinks its gradients",
        )
    else:
        activation, effect = "softmax", f"squeezes the loss towards ln {outputs.width} and shrinks its gradients"
    return _Finding(
        "from_logits=True on outputs that are already probabilities",
        f"the model outputs probabilities ({outputs.seen()}) and the loss applies {activation} again, which {effect}. "
        f"Keras 3 on TensorFlow sees through a {activation} layer, warns and uses the logits beneath; JAX and "
        f"PyTorch, subclassed models and any loss computed from predict outputs apply {activation} twice",
        f"compile the loss with from_logits=False, or drop the {activation} from the last layer and keep from_logits=True",
    )


def _probabilities_from_logits(loss: LossFacts, outputs: _Outputs) -> _Finding:
    if loss.kind == "binary":
        treated = "clips each to [1e-7, 1 - 1e-7]: outputs outside [0, 1] lose their gradient"
        fix = (
            "compile with BinaryCrossentropy(from_logits=True) (and BinaryAccuracy(threshold=0.0), which reads "
            "logits), or add activation='sigmoid' to the last layer"
        )
    else:
        treated = "divides each row by its sum and clips it to [1e-7, 1 - 1e-7]"
        fix = "compile the loss with from_logits=True, or add activation='softmax' to the last layer"
    return _Finding(
        "from_logits=False on outputs that are not probabilities",
        f"the model outputs logits ({outputs.seen()}) and the loss takes them for probabilities: Keras "
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


def _targets_fit(loss: LossFacts, targets, labels, width: int) -> bool:
    """Whether Keras can compute `loss` of these targets against `width` outputs at all."""
    if int(labels.min()) < 0:
        return False
    if targets.ndim == 2:
        return targets.shape[1] == width
    if loss.kind == "binary":
        return width == 1 and int(labels.max()) <= 1
    return int(labels.max()) < width


# -- the loss, the model -------------------------------------------------------------------


def _initial_losses(model, x, y, batch_size: int) -> tuple[float, float]:
    """The compiled loss at initialization, as the shared run measures it, and the regularization in it."""
    total = initial_loss(model, x, y, batch_size)
    return total, _regularization_loss(model)


def _regularization_loss(model) -> float:
    """The sum of `model.losses`: weight regularizers, and activity regularizers and `add_loss`
    terms of the last forward pass, as Keras 2 and 3 add them to the compiled loss."""
    from pipeline_checks.model import compat

    return float(sum(float(np.sum(compat.to_numpy(term))) for term in getattr(model, "losses", None) or ()))


def _output_activation(model) -> str | None:
    """The activation of the layer that produces the model's output; None when that layer is not
    known (a subclassed model, or a functional one with an op such as keras.ops.sigmoid after it)."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    last = layers[-1]
    if type(model).__name__ != "Sequential" and not _produces_output(last, model):
        return None
    if getattr(last, "layers", None):  # a nested model as the last layer
        return _output_activation(last)
    activation = getattr(last, "activation", None)
    if activation is not None:
        return getattr(activation, "__name__", type(activation).__name__)
    return snake_case(type(last).__name__)  # e.g. a Softmax layer: "softmax"


def _produces_output(layer, model) -> bool:
    try:
        outputs = model.outputs
        return len(outputs) == 1 and layer.output is outputs[0]
    except (AttributeError, ValueError, TypeError):  # a layer called never or more than once
        return False


def _rescaling_layers(model) -> list[str]:
    """Names of the layers, nested ones included, that may rescale or normalize what reaches them."""
    from pipeline_checks.model.layers import walk_layers

    kinds = [(f.layer.name, type(f.layer).__name__) for f in walk_layers(model)]
    return [name for name, kind in kinds if "Normalization" in kind or kind in RESCALING_LAYERS]


def _described_gain(model) -> str:
    gain = _head_gain(model)
    return "unknown" if gain is None else f"{gain:.2g}"


def _head_gain(model) -> float | None:
    """std(kernel) * sqrt(fan_in) of the last layer: how much it amplifies unit-scale features."""
    from pipeline_checks.model import compat

    layers = getattr(model, "layers", None)
    kernel = getattr(layers[-1], "kernel", None) if layers else None
    if kernel is None or len(kernel.shape) != 2:
        return None
    values = compat.to_numpy(kernel)
    return float(values.std() * math.sqrt(values.shape[0]))
