"""Where evaluate's loss is not the loss of predict's outputs: Keras reads the logits beneath the head.

Keras on TensorFlow (Keras 3 and tf-keras) marks the output of a sigmoid or softmax with the
logits it came from, and its three cross-entropies read those logits instead of the
probabilities (`_get_logits` in keras/src/backend/tensorflow/nn.py), whichever of the two
activations produced them. Where the loss fits the head this changes nothing but rounding.
Where it does not, fit and evaluate compute another loss than the one of predict's outputs:
categorical cross-entropy on a sigmoid output scores softmax(logits) while predict returns
sigmoid(logits), binary cross-entropy on a softmax scores sigmoid(logits) per unit, and
from_logits=True on either uses the logits once where predict's outputs would take the
activation twice. The metrics, which read the outputs, still agree.
"""

from __future__ import annotations

from dataclasses import dataclass

PROBABILITY_HEADS = ("sigmoid", "softmax")


@dataclass(frozen=True)
class LogitsBeneath:
    """A compiled cross-entropy that does not fit the output's activation, whose logits Keras reads.

    Attributes:
        activation: "sigmoid" or "softmax", the activation of the layer producing the output.
        loss: the compiled loss's name, e.g. "categorical_crossentropy".
        from_logits: whether the loss was compiled with from_logits=True.
        units: the output's width, where the model's output shape gives it.
    """

    activation: str
    loss: str
    from_logits: bool
    units: int | None = None

    @property
    def misfit(self) -> str:
        """How the loss misfits the head, e.g. 'categorical_crossentropy on a sigmoid output'."""
        if self.from_logits:
            return f"{self.loss} with from_logits=True on a {self.activation} output"
        return f"{self.loss} on a {self.activation} output"

    @property
    def scored(self) -> str:
        """What fit and evaluate score instead of predict's outputs."""
        if self.from_logits:
            return f"the logits beneath the {self.activation} once, where a loss of predict's outputs applies it twice"
        other = "softmax" if self.activation == "sigmoid" else "sigmoid"
        return f"{other}(logits) while predict returns {self.activation}(logits)"

    @property
    def fitting_loss(self) -> str:
        """The loss this head calls for, as a fix."""
        if self.from_logits:
            return f"compile the loss with from_logits=False, or drop the {self.activation} and keep from_logits=True"
        if self.activation == "softmax" and self.units == 1:
            return (
                "a softmax over one unit is 1 for every image: for two classes give the unit activation='sigmoid' "
                "and keep binary_crossentropy, or use two softmax units with sparse_categorical_crossentropy"
            )
        if self.activation == "sigmoid":
            return (
                "for one class per image give the last layer activation='softmax' and keep the categorical "
                "cross-entropy; keep sigmoid outputs only with binary_crossentropy (several labels per image)"
            )
        return (
            "for one class per image compile with categorical_crossentropy (one-hot labels) or "
            "sparse_categorical_crossentropy (sparse labels)"
        )


def logits_beneath(model) -> LogitsBeneath | None:
    """The misfit between `model`'s compiled cross-entropy and its sigmoid or softmax output, where
    Keras computes that loss from the logits beneath; None where the loss fits the head, where the
    output's activation is not known, or on a backend that scores the outputs themselves."""
    from pipeline_checks.model import compat
    from pipeline_checks.model.heads import output_activation
    from pipeline_checks.model.losses import loss_facts

    if compat.backend() != "tensorflow":
        return None
    activation = output_activation(model)
    if activation not in PROBABILITY_HEADS:
        return None
    loss = loss_facts(getattr(model, "loss", None))
    if loss.kind is None:
        return None
    fits = loss.kind == "binary" if activation == "sigmoid" else loss.categorical
    if fits and not loss.from_logits:
        return None
    return LogitsBeneath(activation, loss.name, bool(loss.from_logits), _units(model))


def _units(model) -> int | None:
    try:
        width = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return int(width) if width is not None else None
