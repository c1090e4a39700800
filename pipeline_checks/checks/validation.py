"""Arguments every check takes, checked the same way everywhere."""

from __future__ import annotations

from typing import Any

from pipeline_checks._validation import check_integer
from pipeline_checks.pipelines.pipeline import Pipeline


def checked_pipeline(pipeline: Any) -> Pipeline:
    if not isinstance(pipeline, Pipeline):
        raise TypeError(
            "checks take a pipeline_checks.Pipeline (name, build_model, data, ...); "
            f"received: pipeline={pipeline!r} of type {type(pipeline).__name__}"
        )
    return pipeline


def checked_seed(seed: Any) -> int:
    return check_integer("seed", seed, 0, "a non-negative integer")
