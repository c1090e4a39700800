"""Check: labels, class names, the loss and the model's outputs agree on what a class index means.

Most of these bugs train without an error: 1-based labels with one output too many, a
softmax applied twice, a validation split whose class indices shifted, a loader that gives
every file the same label, binary cross-entropy on a softmax. Most need no training: the check
reads the data, builds the model once from the seed, runs it on one batch and measures the
loss before the first step. Only validation's labels are read against the shared run's trained
model, where the class names cannot tell (`label_permutation`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from pipeline_checks._validation import check_number
from pipeline_checks.checks import label_findings, label_permutation, mask_labels, target_findings
from pipeline_checks.checks.family import SHARED_RUN, family
from pipeline_checks.errors import pipeline_step
from pipeline_checks.model.compile_arguments import compile_mistake_of
from pipeline_checks.model.heads import (
    PROBABILITY_ACTIVATIONS,
    HeadOutputs,
    head_gain,
    initial_losses,
    rescaling_layers,
    softmax_over_one_unit,
)
from pipeline_checks.model.losses import LossFacts, loss_facts
from pipeline_checks.pipelines.input_kind import are_images
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import Finding, verdict
from pipeline_checks.run.builds import fresh_build
from pipeline_checks.run.training import shared_run

NAME = "labels"
DEFAULT_INITIAL_LOSS_FACTOR = 3.0
LARGE_HEAD_GAIN = 3.0  # Glorot's gain std * sqrt(fan_in) is at most sqrt(2)
UNIT_SCALE = 5.0  # inputs scaled to [0, 1], [-1, 1] or standardized stay within; raw pixels go to 255


@family(NAME, SHARED_RUN, per_output=True)  # the trained model tells how validation numbers the classes
def check_labels(pipeline, seed: int = 0, initial_loss_factor: float = DEFAULT_INITIAL_LOSS_FACTOR) -> CheckResult:
    """Fail when labels, class names, the compiled loss and the model's outputs disagree.

    Five parts for class labels; only the validation labels' part reads a trained model (the
    shared run). Float targets to regress (`RawData.task == "regression"`) are judged apart,
    without training: see **Regression targets** below.

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
      (its softmax is 1, so the loss is always 0). A softmax over one unit fails whatever
      the loss: it is 1 for every input, so no gradient reaches the weights (read from the
      last layer's activation, or from outputs exactly 1 on the batch and on zeros). A
      regression loss (MSE, MAE, Huber, ...) on a softmax or sigmoid head with class-index
      or one-hot targets fails too: its gradient through the activation vanishes where an
      output saturates. A linear output under a regression loss is a regression model, not
      judged here. 1-based labels 1..C with a C+1-output model train without an error:
      output 0 is never a target.
    - **from_logits.** The outputs on one batch show whether they are probabilities
      (softmax rows summing to 1; sigmoid outputs in [0, 1] from a sigmoid layer), which
      works for subclassed models too (the tolerance follows the precision the outputs
      were computed in: a bfloat16 softmax row sums to 1 only within 1%):
      `from_logits=True` on probabilities applies softmax or sigmoid twice (Keras 3 on
      TensorFlow sees through the activation layer, warns and uses its logits; other
      backends, and any loss computed from `predict` outputs, do not); `from_logits=False`
      on logits makes Keras clip them as if they were probabilities.
    - **Class order across splits.** With `validation_data`, both splits must list the same
      `class_names` in the same order: a class missing from one directory split shifts
      every index after it. Where the names agree, or are only indices ('0', '1', ... from
      an integer-labelled dataset), the shared run's trained model is asked: where it fits
      the training images, validation labels that it predicts, consistently and one to
      one, as other training labels (a split labelled from a reversed class list) fail.
    - **Loss at initialization.** A freshly initialized classifier predicts about
      uniformly, so its cross-entropy starts near ln C (C softmax outputs) or ln 2 (binary
      cross-entropy, per output) whatever the label balance. The data loss of a
      training-mode pass before any step is judged: the compiled loss (the shared run's
      `initial_loss`) less the model's regularization losses, which say nothing about the
      labels. Above `initial_loss_factor` x the uniform loss the check fails only for a
      cause it sees: a from_logits mismatch, or unscaled inputs, proven by the same model
      starting within the bound on the inputs divided by their largest magnitude. Without
      one it passes with a note, which names a last layer with large initial weights as the
      reason where there is one. A loss well below is no bug: `build_model` may return a
      model already trained on the task. Checked for the plain cross-entropies only.
    - **Regression targets.** Float values (no class names) are judged against the head and
      the loss: the last layer's activation must be able to reach them (a sigmoid gives
      [0, 1], tanh [-1, 1], relu >= 0: miles per gallon out of a sigmoid fail), its width
      must match the targets' per example (Keras broadcasts a Dense(3) against (N, 1) targets
      without an error), and a cross-entropy fails on values that are not probabilities
      (binary cross-entropy on targets outside [0, 1] turns negative; a categorical one on
      one unit is 0). Coverage, class order, label permutation and the loss at
      initialization do not apply to values, and a note says so.

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
    factor = check_number("initial_loss_factor", initial_loss_factor, "a number greater than 1", low=1, low_open=True)
    raw, validation = pipeline.raw_data(), pipeline.raw_validation_data()
    x_train, y_train = pipeline.training_pairs(raw)
    x_infer = pipeline.infer_inputs(raw.images[: pipeline.batch_size])
    encoding = pipeline.encoding_of(y_train)
    model = fresh_build(pipeline, seed)  # the training run's initial model, shared with other checks
    if raw.task == "regression":  # values to regress: judged against the loss and the head, not as classes
        return _check_targets(pipeline, raw, validation, y_train, x_infer, model)
    if raw.task == "segmentation":  # a class per pixel: counted over pixels, the head's last axis per pixel
        return mask_labels.check_masks(pipeline, NAME, raw, validation, y_train, x_train, x_infer, model)

    report = _Report(raw.classes)
    if validation is not None and pipeline.validation_data is None and pipeline.source() is None:
        report.held_out = len(validation)  # held out of the arrays by validation_split
    if report.label_range("data", raw):
        report.classes_covered(raw)
    if validation is not None:
        report.label_range("validation_data", validation)
        report.class_order(raw.class_names, validation.class_names)
    loss = loss_facts(getattr(model, "loss", None))
    report.numbers.update(loss=loss.name, from_logits=loss.from_logits)
    # The check's own passes run the user's model: what it raises names the pipeline (and, where
    # the compile arguments show one, the likely cause), as fit's errors do.
    with pipeline_step(pipeline, "the model on a training batch (check_labels' passes)", compile_mistake_of(model)):
        outputs = HeadOutputs.of(model, x_infer)
        report.one_unit_softmax = softmax_over_one_unit(model, x_infer, outputs)
        report.head(outputs, loss, encoding, raw, y_train)
        report.from_logits(outputs, loss)
        measure = functools.partial(initial_losses, model, y=y_train, batch_size=pipeline.batch_size)
        report.initial_loss(loss, measure, factor, x_train, model)
    if validation is not None and not report.held_out:  # labelled apart: not images fit's validation_split keeps
        report.validation_predictions(pipeline, seed, validation, loss)

    return verdict(
        NAME,
        pipeline,
        report.findings,
        report.agreement(loss, encoding),
        notes=[f"  {note}" for note in report.notes],
        **report.numbers,
    )


def _check_targets(pipeline, raw, validation, targets, x_infer, model) -> CheckResult:
    """The regression part: float targets against the output's range and width, and against the loss."""
    stats = target_findings.TargetStats.of(targets)
    loss = loss_facts(getattr(model, "loss", None))
    with pipeline_step(pipeline, "the model on a training batch (check_labels' passes)", compile_mistake_of(model)):
        outputs = HeadOutputs.of(model, x_infer)
        one_unit_softmax = softmax_over_one_unit(model, x_infer, outputs)
    ndim = outputs.values.ndim
    width = outputs.width if ndim == 2 else (1 if ndim == 1 else None)  # (batch,) outputs: one value each
    activation = "softmax" if one_unit_softmax else outputs.activation
    numbers = dict(
        task="regression",
        targets=stats.count,
        target_range=(stats.low, stats.high),
        target_mean=stats.mean,
        target_std=stats.std,
        targets_per_example=stats.per_example,
        output_width=width,
        output_activation=activation,
        loss=loss.name,
    )
    findings, notes = [], []
    if width is None:
        notes.append(f"output width not checked: outputs have shape {outputs.values.shape}, not (batch, values)")
    elif width != stats.per_example:
        findings.append(target_findings.width_differs(width, stats, loss))
    if activation in target_findings.OUTPUT_RANGES:
        missed = target_findings.outside(targets, target_findings.OUTPUT_RANGES[activation])
        numbers["targets_out_of_reach"] = missed
        if missed or one_unit_softmax:
            findings.append(target_findings.out_of_reach(activation, width or 1, stats, targets, loss))
    findings += _loss_on_values(loss, stats, width, targets, notes)
    if stats.not_finite:
        notes.append(target_findings.not_finite_note(stats))
    notes.append(target_findings.not_classes_note())
    if loss.from_logits is not None:
        notes.append(target_findings.FROM_LOGITS_NOTE)
    notes.append(target_findings.initial_loss_note(loss))
    summary = f"{stats.described()}; {target_findings.reach_text(activation)}; loss {loss.name}"
    if validation is not None:
        held = target_findings.TargetStats.of(validation.labels)
        numbers["validation_target_range"] = (held.low, held.high)
        summary += f"; validation: {held.count} targets in [{held.low:.3g}, {held.high:.3g}]"
    return verdict(NAME, pipeline, findings, summary, notes=[f"  {note}" for note in notes], **numbers)


def _loss_on_values(loss: LossFacts, stats, width: int | None, targets, notes: list) -> list[Finding]:
    """A cross-entropy on values that are neither probabilities nor soft labels; notes where one fits."""
    values = np.asarray(targets, dtype=np.float64)
    if loss.kind == "binary" and not target_findings.outside(values, (0.0, 1.0)):
        notes.append(target_findings.probability_targets_note(loss, stats))
        return []
    if loss.kind == "one_hot" and _soft_labels(values, width):
        notes.append(target_findings.distribution_targets_note(loss, stats))
        return []
    if loss.kind is not None:
        return [target_findings.classification_loss_on_values(loss, stats, width, values)]
    if not loss.regression:
        notes.append(target_findings.unknown_loss_note(loss))
    return []


def _soft_labels(values: np.ndarray, width: int | None) -> bool:
    """Rows of `width` > 1 non-negative values that each sum to 1: a distribution over classes per example."""
    if values.ndim != 2 or width is None or width < 2 or values.shape[1] != width:
        return False
    return bool(values.min() >= 0 and np.allclose(values.sum(axis=1), 1.0, atol=1e-3))


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
    held_out: int = 0  # the last images fit's validation_split keeps out of training
    one_unit_softmax: bool = False  # the one output is a softmax over one unit: 1.0 for every input
    unnamed: bool = False  # validation's class names are only indices ('0', '1', ...)
    compared: label_permutation.LabelComparison | None = None  # the trained model on both splits' labels

    def __post_init__(self):
        self.numbers["classes"] = self.classes

    # -- labels --------------------------------------------------------------------------

    def label_range(self, split: str, raw) -> bool:
        """Whether `raw`'s labels lie in [0, classes); a finding when they do not."""
        low, high = int(raw.labels.min()), int(raw.labels.max())
        self.numbers[f"{split}_labels"] = (low, high)
        if 0 <= low and high < raw.classes:
            return True
        self.findings.append(label_findings.labels_out_of_range(split, raw, low, high))
        return False

    def classes_covered(self, raw) -> None:
        """The training labels must name every class in class_names, and at least two."""
        present = sorted({int(label) for label in raw.labels})
        self.numbers["data_classes_present"] = len(present)
        if len(present) >= max(raw.classes, 2):
            return
        self.findings.append(label_findings.classes_missing(raw, present, self.held_out))

    def class_order(self, train_names, validation_names) -> None:
        self.numbers["validation_classes"] = len(validation_names)
        if tuple(train_names) == tuple(validation_names):
            return
        self.findings.append(label_findings.class_order_differs(train_names, validation_names))

    def validation_predictions(self, pipeline, seed: int, validation, loss: LossFacts) -> None:
        """Validation's labels against what the trained model predicts on each split's images of each label.

        Names that agree, or say nothing ('0', '1', ... from a dataset), leave a validation split
        labelled from another class list unseen. Judged only where nothing above fails: a model
        whose labels or head are wrong says nothing about validation's labels, and may not train.
        """
        self.unnamed = label_permutation.generated_names(validation.class_names)
        if self.findings:
            return  # a class-order finding names the cause itself; others make the model's predictions moot
        if self.width is None:
            self.notes.append(
                "validation labels not compared with the trained model's predictions: the outputs are not one "
                "score per class"
            )
            return
        run = shared_run(pipeline, seed)
        with pipeline_step(pipeline, "the trained model on the training and validation images (check_labels)"):
            x_validation = pipeline.infer_inputs(validation.images)
            compared = label_permutation.compare(
                run.model,
                run.x_infer,
                run.raw.labels,
                x_validation,
                validation.labels,
                pipeline.batch_size,
                threshold=0.0 if loss.from_logits else 0.5,
            )
        self.numbers["label_predictions"] = compared.numbers()
        self.compared = compared
        unjudged = label_findings.validation_labels_unjudged(compared)
        if unjudged:
            self.notes.append(unjudged)
        elif compared.moved:
            self.findings.append(label_findings.validation_labels_moved(compared, self.unnamed))
        elif compared.agrees:
            self.notes.append(label_findings.validation_labels_agree(compared))
        else:
            self.notes.append(label_findings.validation_labels_mixed(compared))

    # -- the head ------------------------------------------------------------------------

    def head(self, outputs: HeadOutputs, loss: LossFacts, label_encoding: str, raw, targets) -> None:
        """Output width against class_names, and the loss against the head and the labels."""
        if outputs.width is None:
            self.notes.append(
                "output width and from_logits not checked: outputs have shape "
                f"{outputs.values.shape}, not (batch, classes)"
            )
            self.loss_computable = False
            return
        self.width = width = outputs.width
        self.numbers["output_width"] = width
        self.numbers["output_precision"] = outputs.precision
        self._width(width, raw)
        if self.one_unit_softmax:
            self._mismatch(label_findings.softmax_over_one_unit(loss, outputs), "a softmax over one unit (above)")
        if loss.categorical:
            self._categorical_head(loss, label_encoding, targets, raw, width)
        elif loss.kind == "binary":
            self._binary_head(outputs, loss, label_encoding, targets, raw)
        elif loss.regression and not self.one_unit_softmax:  # a constant output: the softmax finding's
            self._regression_head(outputs, loss, label_encoding, targets, raw)
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
            Finding(
                f"the model outputs {width} scores for {raw.classes} classes",
                f"class_names has {raw.classes} names but the last layer has {width} units{effect}",
                f"build the last layer with len(class_names) = {raw.classes} units",
            )
        )

    def _categorical_head(self, loss: LossFacts, label_encoding: str, targets, raw, width: int) -> None:
        if width == 1:
            # With another class count the width finding above says it; a one-hot categorical loss on
            # a one-unit softmax is the softmax finding's.
            if raw.classes == 2 and not (self.one_unit_softmax and loss.kind == "one_hot"):
                self._mismatch(label_findings.categorical_on_one_unit(loss, raw))
            return
        if loss.kind != label_encoding:
            self._mismatch(label_findings.encoding_mismatch(loss, label_encoding, targets, raw.classes))

    def _binary_head(self, outputs: HeadOutputs, loss: LossFacts, label_encoding: str, targets, raw) -> None:
        width = outputs.width
        if label_encoding == "sparse":
            if width == 1:
                self.head_text = "" if self.one_unit_softmax else "1 output (binary: one unit for 2 classes)"
            else:
                self._mismatch(label_findings.binary_on_sparse(loss, targets, width, raw.classes, outputs.softmax_rows))
            return
        if width != targets.shape[1]:
            if width == 1:  # other widths: the width finding above says it
                self._mismatch(label_findings.binary_one_hot_on_one_unit(loss, targets))
            return
        if outputs.softmax_rows and width > 2:
            self._mismatch(label_findings.binary_on_softmax(loss, width))
        elif outputs.softmax_rows:
            self.head_text = "2 softmax outputs scored as binary ones (the same loss as one sigmoid unit)"
        else:
            self.head_text = f"{width} independent outputs (multi-label, one-vs-rest)"
            self.notes.append(
                f"{width} independent outputs with {loss.name}: checked as one-vs-rest (multi-label) units; "
                "the pipeline's labels give one class per image, as label_encoding='one_hot' one-hot rows"
            )

    def _regression_head(self, outputs: HeadOutputs, loss: LossFacts, label_encoding: str, targets, raw) -> None:
        """A regression loss on a softmax or sigmoid head with class targets; a linear head (a regression
        model) and targets that are not whole numbers (soft or real-valued ones) are left alone."""
        classifier = outputs.activation in PROBABILITY_ACTIVATIONS or outputs.softmax_rows
        values = np.asarray(targets, dtype=np.float64)
        if not classifier or not np.array_equal(values, np.round(values)):
            return
        self._mismatch(label_findings.regression_loss_on_classifier(loss, outputs, label_encoding, targets, raw))

    def _mismatch(self, finding: Finding, unmeasured: str = "the loss does not fit the head (above)") -> None:
        self.findings.append(finding)
        self.loss_computable = False
        self.loss_unmeasured = unmeasured

    # -- from_logits ---------------------------------------------------------------------

    def from_logits(self, outputs: HeadOutputs, loss: LossFacts) -> None:
        if loss.from_logits is None or outputs.width is None or self.one_unit_softmax:
            return  # a softmax over one unit is constant, probability or not: the head finding says it
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
                f"from_logits not judged: the {outputs.described()} could be probabilities or logits, and the layer "
                "that produces the model's output is not known (a subclassed model, or an op after the last layer)"
            )
        elif loss.from_logits and probabilities:
            self.findings.append(label_findings.from_logits_on_probabilities(loss, outputs))
        elif not loss.from_logits and not probabilities:
            self.findings.append(label_findings.probabilities_from_logits(loss, outputs))

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
        gain = head_gain(model)
        if found is None and math.isfinite(data) and gain is not None and gain > LARGE_HEAD_GAIN:
            # A large head (keras.applications.EfficientNet's own, built with weights=None) makes a
            # fresh model confident whatever the labels: a choice of initialization, not a labels bug.
            self.numbers.update(head_gain=gain, initial_loss_cause="head_gain")
            self.notes.append(
                f"{seen}: {ratio}, above {factor:g}x, because its last layer starts with large weights "
                f"(std x sqrt(fan_in) = {gain:.3g}, where Glorot's is at most 1.4, as "
                "keras.applications.EfficientNet's own head); not failed: that is the initialization, not the labels"
            )
            return
        if found is None and math.isfinite(data):
            # A deep or residual net (identity shortcuts add up) can start confident with nothing wrong.
            self.numbers["initial_loss_cause"] = None
            judged = "fits the outputs" if self.numbers.get("outputs_are_probabilities") is not None else "not judged"
            shown_gain = "unknown" if gain is None else f"{gain:.2g}"
            self.notes.append(
                f"{seen}: {ratio}, above {factor:g}x, but no cause shows (from_logits {judged}, the last layer's "
                f"gain is {shown_gain}, the inputs span [{np.min(x_train):.4g}, {np.max(x_train):.4g}]); "
                "not failed: a deep or residual model can start this confident"
            )
            return
        cause, fix = found or (
            "the loss is not finite before the first step",
            "see the numerics check for where NaN or Inf first appears",
        )
        self.findings.append(
            Finding(
                f"loss at initialization {data:.4g}, expected about ln {uniform} = {expected:.3g}",
                f"{data:.4g}{share} is {ratio}, above {factor:g}x: a freshly initialized classifier predicts about "
                f"uniformly, so its loss starts near ln {uniform}. This model starts confidently wrong",
                fix,
                cause=cause,
            )
        )

    def _confident_cause(self, model, x_train, measure, bound: float) -> tuple[str, str] | None:
        """What makes a fresh model confidently wrong, as (likely cause, fix), where one shows; None where none does."""
        if any("from_logits" in f.summary for f in self.findings):
            self.numbers["initial_loss_cause"] = "from_logits"
            return "the from_logits mismatch above", "fix from_logits as above"
        return self._input_scale_cause(model, x_train, measure, bound)

    def _input_scale_cause(self, model, x_train, measure, bound: float) -> tuple[str, str] | None:
        """Unscaled inputs, proven: the same model on the inputs divided by their largest magnitude
        starts within the bound.

        Only where the inputs lie beyond unit scale and no layer of the model rescales them
        itself (there, dividing the inputs again would make the model's own inputs tiny and
        its outputs uniform whatever the cause).
        """
        low, high = float(np.min(x_train)), float(np.max(x_train))
        span = max(abs(low), abs(high))
        if not span > UNIT_SCALE or rescaling_layers(model):
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
            "scale the inputs (e.g. / 255, or the application's preprocess_input) or add a Rescaling or "
            "Normalization layer"
            if are_images(x_train)
            else "standardize the features (with the training set's mean and std) or add a Normalization layer "
            "adapted to them",
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
            text += (
                "; validation has no class names"
                if self.unnamed
                else ("; validation lists the same classes in the same order")
            )
        compared = self.compared
        if compared is not None and compared.model_fits and len(compared.judged) >= 2 and compared.agrees:
            text += ", and the trained model predicts its labels as training's"
        return text


def _targets_fit(loss: LossFacts, targets, labels, width: int) -> bool:
    """Whether Keras can compute `loss` of these targets against `width` outputs at all."""
    if int(labels.min()) < 0:
        return False
    if targets.ndim == 2:
        return targets.shape[1] == width
    if loss.kind == "binary":
        return width == 1 and int(labels.max()) <= 1
    return int(labels.max()) < width
