"""What a compiled loss expects: read from `model.loss`, a string, a function, a partial or a Loss."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

CROSSENTROPIES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")
LOSS_ALIASES = {"bce": "binary_crossentropy"}  # Keras' short names, lower-cased
# Keras' regression losses (names, aliases and Loss classes in snake case): they score outputs as numbers.
REGRESSION_LOSSES = (
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "mean_squared_logarithmic_error",
    "msle",
    "mean_absolute_percentage_error",
    "mape",
    "huber",
    "huber_loss",
    "log_cosh",
    "logcosh",
)


@dataclass(frozen=True)
class LossFacts:
    """What the compiled loss expects.

    `kind` is "sparse" or "one_hot" for a categorical loss (the label encoding it takes),
    "binary" for a binary one (a 0/1 target per output), None for any other loss.
    """

    name: str
    kind: str | None
    from_logits: bool | None
    crossentropy: bool  # a plain cross-entropy: ln C (categorical) or ln 2 (binary) for uniform predictions

    @property
    def categorical(self) -> bool:
        return self.kind in ("sparse", "one_hot")

    @property
    def regression(self) -> bool:
        """A regression loss (squared, absolute, Huber, ...): it scores each output as a number to reach."""
        return self.kind is None and bool({self.name.lower(), snake_case(self.name)} & set(REGRESSION_LOSSES))


def loss_facts(loss) -> LossFacts:
    """Name, kind and from_logits of `model.loss`: a string, a function or a Loss."""
    if loss is None or isinstance(loss, (list, tuple, dict)):
        return LossFacts("none" if loss is None else "one loss per output", None, None, False)
    names = _loss_names(loss)
    binary = [n for n in names if "binary" in n]
    categorical = [n for n in names if "categorical" in n]
    if binary:
        name, kind = next((n for n in binary if n in CROSSENTROPIES), binary[0]), "binary"
    elif categorical:
        name = next((n for n in categorical if n in CROSSENTROPIES), categorical[0])
        kind = "sparse" if name.startswith("sparse") else "one_hot"
    else:
        return LossFacts(names[0] if names else repr(loss), None, None, False)
    return LossFacts(name, kind, _from_logits(loss), name in CROSSENTROPIES)


def _loss_names(loss) -> list[str]:
    if isinstance(loss, str):
        return [LOSS_ALIASES.get(loss.lower(), loss), snake_case(loss)]  # "BinaryCrossentropy" names a class too
    if isinstance(loss, functools.partial):
        return _loss_names(loss.func)
    names = []
    wrapped = getattr(loss, "fn", None)  # Keras 3's LossFunctionWrapper
    if wrapped is not None:
        names.append(getattr(wrapped, "__name__", ""))
    if hasattr(loss, "get_config"):
        names += [str(loss.get_config().get("name", "")), snake_case(type(loss).__name__)]
    else:
        names.append(getattr(loss, "__name__", ""))
    return [n for n in names if n]


def _from_logits(loss) -> bool:
    if isinstance(loss, functools.partial):
        return bool(loss.keywords.get("from_logits", _from_logits(loss.func)))
    if hasattr(loss, "get_config"):
        return bool(loss.get_config().get("from_logits", False))
    return False  # a string or a plain function: Keras' default


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
