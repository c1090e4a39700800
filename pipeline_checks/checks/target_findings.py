"""What the labels check says about regression targets: the values fit regresses, against the
loss and the model's outputs.

Float targets that are not class labels (`RawData.task == "regression"`) have no classes to
cover and no ln C to start from. What can still be wrong trains without an error: an output
activation whose range misses the targets (a sigmoid against miles per gallon), a cross-entropy
that reads values as probabilities or class indices, an output width that Keras broadcasts
against the targets. `labels.py` decides which apply; each function here words one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline_checks.model.losses import LossFacts
from pipeline_checks.results.verdict import Finding

INF = math.inf
# The range each Keras output activation can produce (its infimum and supremum). Activations
# not listed, and a last layer that is not known, are not judged.
OUTPUT_RANGES = {
    "linear": (-INF, INF),
    "leaky_relu": (-INF, INF),
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
    "relu": (0.0, INF),
    "relu6": (0.0, 6.0),
    "softplus": (0.0, INF),
    "sparse_plus": (0.0, INF),
    "exponential": (0.0, INF),
    "elu": (-1.0, INF),
    "celu": (-1.0, INF),
    "selu": (-1.7581, INF),  # -scale * alpha
    "gelu": (-0.17, INF),
    "silu": (-0.2785, INF),
    "swish": (-0.2785, INF),
    "mish": (-0.3089, INF),
    "hard_silu": (-0.375, INF),
    "hard_swish": (-0.375, INF),
    "log_softmax": (-INF, 0.0),
    "log_sigmoid": (-INF, 0.0),
}
# How the targets are moved into each bounded range, for the fix.
SCALINGS = {
    (0.0, 1.0): "(y - min) / (max - min)",
    (-1.0, 1.0): "2 (y - min) / (max - min) - 1",
}
REACH_TOLERANCE = 1e-6  # relative: float32 targets on a bound (a min-max scaled 1.0) are reached


@dataclass(frozen=True)
class TargetStats:
    """What the regression targets are, in numbers: their count, range, mean and spread."""

    shape: tuple[int, ...]
    low: float
    high: float
    mean: float
    std: float
    not_finite: int

    @classmethod
    def of(cls, targets) -> TargetStats:
        values = np.asarray(targets, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if not finite.size:
            finite = np.zeros(1)
        return cls(
            values.shape,
            float(finite.min()),
            float(finite.max()),
            float(finite.mean()),
            float(finite.std()),
            int(values.size - np.isfinite(values).sum()),
        )

    @property
    def count(self) -> int:
        return int(np.prod(self.shape))

    @property
    def per_example(self) -> int:
        """Target values per example: 1 for (N,) and (N, 1), k for (N, k)."""
        return int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1

    @property
    def mean_text(self) -> str:
        """The mean to 3 digits, 0 where it is float32 rounding of a standardized 0 (not -2.51e-06)."""
        return f"{0.0 if abs(self.mean) < 1e-4 * self.std else self.mean:.3g}"

    def described(self) -> str:
        """e.g. '160 float targets in [9.8, 41.2] (mean 25.1, std 6.3), 1 per example'."""
        return (
            f"{self.count} float targets in [{self.low:.3g}, {self.high:.3g}] (mean {self.mean_text}, "
            f"std {self.std:.3g}), {self.per_example} per example"
        )


def range_text(bounds: tuple[float, float]) -> str:
    """'[0, 1]', '>= 0', '> -1', '<= 0' or 'any value'."""
    low, high = bounds
    if low == -INF and high == INF:
        return "any value"
    if high == INF:
        return f">= {low:g}" if low == 0 else f"> {low:g}"
    if low == -INF:
        return f"<= {high:g}"
    return f"[{low:g}, {high:g}]"


def outside(targets, bounds: tuple[float, float]) -> int:
    """How many finite targets lie outside `bounds`, beyond a float32 rounding."""
    values = np.asarray(targets, dtype=np.float64)
    values = values[np.isfinite(values)]
    low, high = bounds
    slack = [REACH_TOLERANCE * max(1.0, abs(b)) if math.isfinite(b) else 0.0 for b in bounds]
    return int(((values < low - slack[0]) | (values > high + slack[1])).sum())


# -- what a passing regression says ---------------------------------------------------------


def reach_text(activation: str | None) -> str:
    if activation is None:
        return "the output's range not judged (the layer that produces it is not known)"
    if activation not in OUTPUT_RANGES:
        return f"the {activation} output's range not judged (an activation the check does not know)"
    bounds = OUTPUT_RANGES[activation]
    ranged = "" if bounds == (-INF, INF) else f" ({range_text(bounds)})"
    return f"the {activation} output{ranged} can reach them"


def not_classes_note() -> str:
    """Why the classification parts do not apply to values."""
    return (
        "class coverage, validation's class names and order, and label permutation not judged: the targets are "
        "float values to regress (no class_names), not class indices, so there are no classes to cover or to "
        "number alike in both splits"
    )


def initial_loss_note(loss: LossFacts) -> str:
    return (
        f"loss at initialization not checked: ln C is where a classifier's cross-entropy starts over C classes; "
        f"{loss.name} on values starts wherever the targets' scale puts it"
    )


FROM_LOGITS_NOTE = "from_logits not judged: the outputs are values to regress, not probabilities or logits of classes"


def unknown_loss_note(loss: LossFacts) -> str:
    return (
        f"the loss {loss.name} not judged against the targets: it is neither a regression loss (MSE, MAE, Huber, "
        "...) nor a cross-entropy"
    )


def not_finite_note(stats: TargetStats) -> str:
    return (
        f"{stats.not_finite} of {stats.count} targets are NaN or Inf (left out of the range above): the loss of "
        "every batch holding one is not finite; numerics names where it first appears"
    )


def probability_targets_note(loss: LossFacts, stats: TargetStats) -> str:
    return (
        f"{loss.name} on float targets in [{stats.low:.3g}, {stats.high:.3g}]: read as probabilities, which "
        "binary cross-entropy fits"
    )


def distribution_targets_note(loss: LossFacts, stats: TargetStats) -> str:
    return f"{loss.name} on {stats.shape[1]}-column rows that each sum to 1: read as soft labels, which it fits"


# -- findings -------------------------------------------------------------------------------


def out_of_reach(activation: str, width: int, stats: TargetStats, targets, loss: LossFacts) -> Finding:
    """The output activation's range misses some of the targets (a softmax over one unit: all of them)."""
    missed = outside(targets, OUTPUT_RANGES[activation])
    bounds = OUTPUT_RANGES[activation]
    if activation == "softmax" and width == 1:
        return Finding(
            "a softmax over the single output unit: the model outputs 1.0 for every example",
            f"softmax divides exp(z) by the sum over the row's units, and over one unit that is exp(z) / exp(z) = 1 "
            f"whatever the input, while the targets are values ({stats.described()}): every prediction is 1.0, "
            "and no gradient flows back through the softmax",
            "drop the activation of the last layer (Dense(1), a linear output) for values on any scale",
        )
    low, high = bounds
    values = np.asarray(targets, dtype=np.float64)
    below, above = outside(values, (low, INF)), outside(values, (-INF, high))
    where = " and ".join(
        f"{count} {side} {bound:g}" for count, side, bound in ((below, "below", low), (above, "above", high)) if count
    )
    passed = " or ".join(f"{bound:g}" for count, bound in ((below, low), (above, high)) if count)
    if activation in ("relu", "relu6"):
        saturates = f"{loss.name} pulls their outputs past {passed}, where the {activation}'s gradient is 0: the unit "
        saturates += "can die and predict one constant for every example"
    else:
        saturates = f"{loss.name} pulls their outputs to {passed}, where the {activation} saturates and its gradient "
        saturates += "vanishes: their predictions bunch at the bound"
    scaling = SCALINGS.get(bounds)
    into = f"scale the targets into {range_text(bounds)}" if scaling else f"shift the targets to {range_text(bounds)}"
    into += f" ({scaling}, with the training set's min and max)" if scaling else ""
    return Finding(
        f"a {activation} output cannot reach {missed} of {stats.count} targets",
        f"the last layer's {activation} gives values {range_text(bounds)}, but {missed} of {stats.count} float "
        f"targets lie outside ({where}; targets in [{stats.low:.4g}, {stats.high:.4g}], mean {stats.mean_text}): "
        f"their error never reaches 0 however long the model trains, and {saturates}. Keras raises no error",
        f"use a linear output (drop activation='{activation}' from the last layer) for values on any scale; or "
        f"{into} and invert that on the predictions",
    )


def classification_loss_on_values(loss: LossFacts, stats: TargetStats, width: int | None, targets) -> Finding:
    """A cross-entropy on float values that are neither probabilities nor class labels."""
    values = np.asarray(targets, dtype=np.float64)
    seen = f"{stats.count} float targets in [{stats.low:.4g}, {stats.high:.4g}]"
    regress = (
        "compile with a regression loss (loss='mean_squared_error', 'mean_absolute_error' or 'huber') on a linear "
        "output"
    )
    if loss.kind == "binary":
        missed = outside(values, (0.0, 1.0))
        refused = ""
        if not loss.from_logits:  # Keras on torch computes it with torch's binary_cross_entropy, which checks them
            refused = " (Keras on torch refuses such targets at the first step instead: 'all elements of target "
            refused += "should be between 0 and 1')"
        return Finding(
            f"{loss.name} on {missed} of {stats.count} targets outside [0, 1]",
            f"binary cross-entropy, -(y log p + (1 - y) log(1 - p)), reads each target y as a probability, but "
            f"{seen} are values. For y above 1 or below 0 it has no minimum at p = y: it keeps falling as p goes to "
            "1 (y > 1) or 0 (y < 0), so the loss turns negative and the outputs are pushed to Keras' clip at 1e-7 "
            f"or 1 - 1e-7 instead of towards the values. fit reports a falling loss{refused}",
            f"{regress}; keep {loss.name} only for targets scaled into [0, 1] on a sigmoid output",
        )
    fractional = values[values != np.round(values)]
    if loss.kind == "sparse":
        cast = f" ({fractional[0]:.4g} becomes class {int(fractional[0])})" if fractional.size else ""
        valid = f"0..{width - 1}" if width else "an output's index"
        detail = (
            f"sparse categorical cross-entropy reads each target as a class index and casts it to an integer, but "
            f"{seen} are values: {fractional.size} of them are not whole{cast}, and "
            f"indices outside {valid} have no output to score. Keras on TensorFlow raises 'Received a label value "
            "of ... which is outside the valid range'; other backends may train on garbage"
        )
    elif width == 1:
        detail = (
            f"categorical cross-entropy normalizes the outputs over the row's units, and over one unit that gives 1 "
            f"for every example: the loss, -y log 1, is 0 whatever the {seen}, so no gradient reaches the weights "
            "and nothing is learned. Keras raises no error"
        )
    else:
        sums = values.reshape(len(values), -1).sum(axis=1)
        detail = (
            f"categorical cross-entropy reads each target row as a distribution over {width} classes, but "
            f"{seen} are values (row sums {sums.min():.3g}..{sums.max():.3g}, not 1): negative targets reward "
            "pushing their probability to 0 without bound, and the outputs cannot match values outside [0, 1]"
        )
    return Finding(f"{loss.name} on float targets that are values, not class labels", detail, regress)


def width_differs(width: int, stats: TargetStats, loss: LossFacts) -> Finding:
    """The model outputs `width` values per example for `stats.per_example` targets."""
    per_example = stats.per_example
    shape = stats.shape
    if per_example == 1:
        broadcasts = (
            "Keras broadcasts"
            if len(shape) > 1
            else "Keras 2 broadcasts (Keras 3 raises 'Dimensions must be equal' at the first step on these (N,) "
            "targets; reshaped to (N, 1) they broadcast there too)"
        )
        effect = (
            f"{broadcasts} {loss.name} over the {width} outputs without an error, training each of them towards the "
            f"same target, and predict returns {width} columns per example where one value is meant: code that "
            "flattens the predictions or compares them with the targets misaligns them"
        )
    elif width == 1:
        effect = (
            f"Keras broadcasts the one output against the {per_example} target columns without an error: it "
            f"learns one number per example (their mean under mean squared error), not each of the "
            f"{per_example} values"
        )
    else:
        effect = (
            f"Keras raises 'Incompatible shapes' at the first step ({width} outputs against {per_example} target "
            "columns)"
        )
    unit = "unit" if per_example == 1 else "units, one per target column"
    return Finding(
        f"the model outputs {width} values per example for {per_example} target{'s' if per_example > 1 else ''}",
        f"fit receives targets of shape {shape} but the last layer has {width} units: {effect}",
        f"build the last layer with {per_example} {unit} (Dense({per_example}))",
    )
