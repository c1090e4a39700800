"""A pipeline whose model has several outputs, seen one output at a time.

The checks that judge targets (labels, overfit, agreement) judge each output with its own
targets, loss and metrics. An `OutputView` is the pipeline as that output sees it: its raw data
holds that output's targets; its model, the view `model.output_models.output_model` makes of the
whole model; its training run, the whole pipeline's shared run seen through that output
(`run.output_runs`). Nothing is trained for a view: the whole model trains, with every loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline_checks._text import listed
from pipeline_checks.pipelines.pipeline import Pipeline, RawData


@dataclass(frozen=True, eq=False)
class OutputView(Pipeline):
    """`whole` seen through its model's output `output`, whose targets are `whole`'s targets[`key`]
    (the output's name for targets by name, its position for a list)."""

    whole: Pipeline | None = None
    output: str = ""
    key: str | int = ""

    def raw_data(self) -> RawData:
        return self.whole.raw_data().output(self.key)

    def raw_validation_data(self) -> RawData | None:
        validation = self.whole.raw_validation_data()
        return None if validation is None else validation.output(self.key)

    def __repr__(self) -> str:
        return f"OutputView({self.whole.name!r}, output={self.output!r})"


def has_several_outputs(pipeline: Pipeline) -> bool:
    """Whether the pipeline's data gives targets per output (a dict or list of arrays); decided once per
    pipeline, as every family asks: only arrays give them, so no loader's data is read again for it."""
    if isinstance(pipeline, OutputView):
        return False
    if "several outputs" not in pipeline._sources:
        arrays = pipeline._kind("data", pipeline.data) == "arrays"
        pipeline._sources["several outputs"] = arrays and bool(pipeline.raw_data().outputs)
    return pipeline._sources["several outputs"]


def output_views(pipeline: Pipeline, model) -> list[OutputView]:
    """One view per output of `model` (the pipeline's model), in the model's output order; a ValueError
    naming both where the targets' keys are not the model's outputs."""
    from pipeline_checks.model.output_models import output_names

    cache = pipeline._sources.setdefault("output views", {})
    names = output_names(model)
    if names in cache:
        return cache[names]
    raw = pipeline.raw_data()
    keys = [key for key, _ in raw.outputs]
    by_name = isinstance(keys[0], str)
    if (sorted(keys) if by_name else len(keys)) != (sorted(names) if by_name else len(names)):
        given = listed([repr(k) for k in keys]) if by_name else f"{len(keys)} arrays"
        raise ValueError(
            f"Pipeline {pipeline.name!r}: data's targets name {given}, but the model's outputs are "
            f"{listed([repr(n) for n in names])}; expected one target array per output, keyed by output name "
            "(or a list in the outputs' order)"
        )
    views = [
        OutputView(
            **{f.name: getattr(pipeline, f.name) for f in dataclasses.fields(Pipeline)},
            whole=pipeline,
            output=name,
            key=name if by_name else index,
        )
        for index, name in enumerate(names)
    ]
    cache[names] = views
    return views
