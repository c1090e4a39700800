"""A classifier's head as a fresh model shows it: its outputs on one batch and what kind of
scores they are, the layer that produces them, how large its weights start, the layers that
rescale what reaches it, and the loss before the first step.

Probes only: each reads a built model and reports what it sees; the labels check judges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline_checks.model import compat
from pipeline_checks.model.forward import forward
from pipeline_checks.model.layers import walk_layers
from pipeline_checks.model.losses import snake_case
from pipeline_checks.model.passes import initial_loss

SUMS_TO_ONE = 1e-3  # softmax rows sum to 1 within float32 rounding; logits almost never do
IN_UNIT_RANGE = 1e-6  # sigmoid outputs lie in [0, 1] within float32 rounding
# Machine epsilon of the float types an output can carry. Softmax rows computed in float16 or
# bfloat16 miss 1 by up to 1.3 (bfloat16) and 1.8 (float16) of their epsilon on 2 to 1000 units
# (measured, Keras 3 on TensorFlow): 0.9941..1.0039 for 3 bfloat16 units, far outside SUMS_TO_ONE.
MACHINE_EPSILON = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
SUMS_TO_ONE_EPSILONS = 4  # a low-precision row sum may miss 1 by this many epsilons of its precision
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid", "hard_sigmoid")
OPAQUE_LAYERS = ("TFOpLambda", "Lambda")  # wrap a function whose activation no attribute names
RESCALING_LAYERS = ("Rescaling", "Lambda", "TFOpLambda")  # besides any *Normalization layer


@dataclass(frozen=True)
class HeadOutputs:
    """A model's outputs on one batch, and what kind of scores they are.

    Attributes:
        values: the outputs, as float64.
        activation: the activation of the layer that produces the model's output (see
            `output_activation`); None when that layer is not known.
        precision: the float type the outputs were computed in (see `precision_of`), e.g.
            "bfloat16" under `mixed_bfloat16`: how close to 1 a softmax row can sum.
    """

    values: np.ndarray
    activation: str | None
    precision: str = "float32"

    @classmethod
    def of(cls, model, x) -> HeadOutputs:
        """The outputs of an inference-mode pass of `model` on the batch `x`."""
        values = compat.to_numpy(forward(model, x, training=False))
        return cls(np.asarray(values, dtype=np.float64), output_activation(model), precision_of(values))

    @property
    def sums_to_one(self) -> float:
        """How far from 1 a softmax row may sum in this precision: SUMS_TO_ONE, or more in float16 and bfloat16."""
        return max(SUMS_TO_ONE, SUMS_TO_ONE_EPSILONS * MACHINE_EPSILON.get(self.precision, 0.0))

    @property
    def in_unit_range(self) -> float:
        """How far outside [0, 1] a probability may lie in this precision."""
        return max(IN_UNIT_RANGE, MACHINE_EPSILON.get(self.precision, 0.0))

    @property
    def width(self) -> int | None:
        """Scores per image; None when the outputs are not shaped (batch, scores)."""
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
            and self.values.min() >= -self.in_unit_range
            and np.abs(self.row_sums - 1).max() <= self.sums_to_one
        )

    @property
    def sigmoid_probabilities(self) -> bool | None:
        """Whether each output is a probability of its own: True, False, or None when undecided.

        Outside [0, 1] they are logits. Inside, a fresh model's logits can lie there by
        chance (a Dense unit after ReLU features often starts small and of one sign), so
        the layer that produces them decides; a subclassed model's stays undecided.
        """
        if self.values.min() < -self.in_unit_range or self.values.max() > 1 + self.in_unit_range:
            return False
        if self.activation in PROBABILITY_ACTIVATIONS:
            return True
        return False if self.activation == "linear" else None

    def described(self) -> str:
        """What the outputs look like, e.g. 'outputs in [0.1, 0.6], row sums 1.0000..1.0000, last layer
        activation softmax'."""
        text = f"outputs in [{self.values.min():.3g}, {self.values.max():.3g}]"
        if self.width and self.width > 1:
            text += f", row sums {self.row_sums.min():.4f}..{self.row_sums.max():.4f}"
        text += f", computed in {self.precision}" if self.precision in LOW_PRECISIONS else ""
        return text + (f", last layer activation {self.activation}" if self.activation else "")

    @property
    def constant_one(self) -> bool:
        """One output that is exactly 1.0 for every image of the batch."""
        return self.width == 1 and bool(np.all(self.values == 1.0))


LOW_PRECISIONS = ("float16", "bfloat16")
GRID_EVIDENCE = 4  # distinct values besides 0 and 1 that must all lie on a low-precision grid to infer it


def precision_of(values: np.ndarray) -> str:
    """The float type `values` were computed in: their dtype's name, or float16 or bfloat16 where
    every value of a wider type lies on that type's grid (a low-precision layer whose output a
    float32 layer only casts, as Activation("linear", dtype="float32") after a mixed-precision head)."""
    values = np.asarray(values)
    name = values.dtype.name
    if name not in ("float32", "float64") or not np.all(np.isfinite(values)):
        return name
    as_float32 = values.astype(np.float32)
    # Saturated outputs (only 0s and 1s, or a few round values) lie on every grid: they say nothing.
    if len(np.setdiff1d(as_float32, (0.0, 1.0))) < GRID_EVIDENCE or not np.array_equal(as_float32, values):
        return name
    if not np.any(as_float32.view(np.uint32) & 0xFFFF):  # bfloat16 is float32 without its low 16 bits
        return "bfloat16"
    return "float16" if np.array_equal(as_float32.astype(np.float16).astype(np.float32), as_float32) else name


def softmax_over_one_unit(model, x, outputs: HeadOutputs) -> bool:
    """Whether the model's one output is a softmax over a single unit, exp(z) / exp(z) = 1 for any input.

    Read from the layer that produces the output, where it is known; where it is not (a
    subclassed model, an op after the last layer), from the outputs: exactly 1.0 on the batch
    and on the same batch of zeros, where even a sigmoid saturated by large inputs gives
    sigmoid(bias).
    """
    if outputs.width != 1:
        return False
    if outputs.activation is not None:
        return outputs.activation == "softmax"
    if not outputs.constant_one:
        return False
    try:
        zeros = np.zeros_like(np.asarray(x))
    except (TypeError, ValueError):
        return False
    if zeros.dtype.kind not in "fiu" or zeros.ndim == 0:  # inputs that are no one numeric array (a dict of inputs)
        return False
    return HeadOutputs.of(model, zeros).constant_one


def output_activation(model) -> str | None:
    """The activation of the layer that produces `model`'s output, e.g. "softmax" or "linear".

    A nested model as the last layer is looked into; an activation layer (`Softmax`) gives its
    own name in snake case. None when that layer is not known: a subclassed model, or a
    functional one with an op such as `keras.ops.sigmoid` (Keras 2: a `TFOpLambda`) or a
    `Lambda` after its last layer.
    """
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    last = layers[-1]
    if type(model).__name__ != "Sequential" and not produces_output(last, model):
        return None
    if getattr(last, "layers", None):
        return output_activation(last)
    if type(last).__name__ in OPAQUE_LAYERS:
        return None
    activation = getattr(last, "activation", None)
    if activation is not None:
        return getattr(activation, "__name__", type(activation).__name__)
    return snake_case(type(last).__name__)


def produces_output(layer, model) -> bool:
    """Whether `layer` made `model`'s one output, read from the output's Keras history (a nested
    model's own `.output` is its inner tensor in Keras 2); False for a model with several outputs."""
    try:
        outputs = model.outputs
        return len(outputs) == 1 and outputs[0]._keras_history[0] is layer
    except (AttributeError, ValueError, TypeError, IndexError):
        return False


def rescaling_layers(model) -> list[str]:
    """Names of the layers, nested ones included, that may rescale or normalize what reaches
    them: every `*Normalization` layer, `Rescaling`, and `Lambda` (which may call
    `preprocess_input`)."""
    kinds = [(f.layer.name, type(f.layer).__name__) for f in walk_layers(model)]
    return [name for name, kind in kinds if "Normalization" in kind or kind in RESCALING_LAYERS]


def head_gain(model) -> float | None:
    """std(kernel) * sqrt(fan_in) of the last layer: how much it amplifies unit-scale features
    (Glorot's initialization gives at most sqrt(2)); None when the last layer has no 2-D kernel."""
    layers = getattr(model, "layers", None)
    kernel = getattr(layers[-1], "kernel", None) if layers else None
    if kernel is None or len(kernel.shape) != 2:
        return None
    values = compat.to_numpy(kernel)
    return float(values.std() * math.sqrt(values.shape[0]))


def regularization_loss(model) -> float:
    """The sum of `model.losses`: weight regularizers, and the activity regularizers and
    `add_loss` terms of the last forward pass, as Keras 2 and 3 add them to the compiled loss."""
    return float(sum(float(np.sum(compat.to_numpy(term))) for term in getattr(model, "losses", None) or ()))


def initial_losses(model, x, y, batch_size: int) -> tuple[float, float]:
    """The compiled loss of a training-mode pass on (x, y) before any step, as the shared run
    measures it (`model.passes.initial_loss`), and the regularization in it (`regularization_loss`
    right after that pass, so activity terms are its own)."""
    total = initial_loss(model, x, y, batch_size)
    return total, regularization_loss(model)
