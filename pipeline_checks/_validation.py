"""Argument checks shared by every public function: one message shape, "NAME must be ...; received: NAME=VALUE"."""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_integer(value: Any) -> bool:
    """An int or NumPy integer; a bool is not (True would pass as 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int, float or NumPy number; a bool is not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_integer(name: str, value: Any, minimum: int, described: str | None = None) -> int:
    """`value` as an int, or ValueError when it is not an integer of at least `minimum`."""
    if not is_integer(value) or value < minimum:
        raise ValueError(
            f"{name} must be {described or f'an integer of at least {minimum}'}; received: {name}={value!r}"
        )
    return int(value)


def check_number(
    name: str,
    value: Any,
    described: str,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = True,
) -> float:
    """`value` as a float, or ValueError (saying it must be `described`) when it is not a finite
    number between `low` and `high`; each end excluded when open."""
    inside = (
        is_number(value)
        and math.isfinite(value)
        and (low < value if low_open else low <= value)
        and (value < high if high_open else value <= high)
    )
    if not inside:
        raise ValueError(f"{name} must be {described}; received: {name}={value!r}")
    return float(value)


def check_boolean(name: str, value: Any) -> bool:
    """`value`, or ValueError when it is not True or False (1 and "yes" are not)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; received: {name}={value!r}")
    return value
