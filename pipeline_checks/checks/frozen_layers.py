"""Check: layers frozen before fit keep their weights and their statistics through fit.

Which variables are weights and which are statistics, and when a layer counts as frozen,
is `pipeline_checks.run.variables`' to say (`variable_roles`). A run in stages (a pipeline's
own `train` function calling fit more than once) is judged stage by stage: each stage's
frozen layers, from its start to its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.checks.family import family
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.run.training import (
    Stage,
    TrainingRun,
    shared_run,
    stage_name,
    stages_of,
)
from pipeline_checks.run.variables import (
    FROZEN,
    FROZEN_STATISTIC,
    VariableRole,
    change,
    variable_roles,
)

NAME = "frozen_layers"


@family(NAME)
def check_frozen_layers(pipeline, seed: int = 0) -> CheckResult:
    """Fail when fit moves the weights or the statistics of layers frozen before fit.

    Fit must leave a frozen layer exactly as it found it, and run it as inference does.
    Three failures are told apart: frozen weights that moved (kernel, bias, gamma, beta:
    fit kept training them, e.g. `trainable` was set to False after the model was compiled
    and fit, without compiling again); frozen statistics that moved (BatchNormalization
    moving mean and variance, or a custom layer's running statistics, updated in training
    mode although the layer is frozen); and frozen BatchNormalization layers that normalize
    with batch statistics in training mode (Keras 2's V1 layer, whose statistics stay put
    while fit's accuracy collapses: the second report). Statistics of layers that are not
    frozen may move: that is how they learn.

    With the pipeline's own `train` function, each fit it calls is a stage with its own
    frozen set (model.trainable_weights when that fit starts), judged from the stage's start
    to its end, and failures name the stage ("in stage 1 of 2 (fit 1)"): a base frozen for
    the head's stage must not move in it, and may move once unfrozen (and recompiled).

    Args:
        pipeline: a `Pipeline`.
        seed: the seed of the shared training run.

    Returns:
        A `CheckResult`; its details list what moved, by how much, the cause and the fix.

    Example:
        >>> check_frozen_layers(pipeline).raise_if_failed()
    """
    pipeline, seed = checked_pipeline(pipeline), checked_seed(seed)
    run = shared_run(pipeline, seed)
    stages = stages_of(run)
    probed: dict[str, tuple | None] = {}  # layer path -> (path, class) where it runs on batch statistics
    judged = [_judge_stage(run, stage, len(stages), probed) for stage in stages]
    judged = [j for j in judged if j.layers]
    if not judged:
        return passed(NAME, pipeline, "no layer is frozen: nothing to keep still", frozen_layers=0)
    numbers = _numbers(judged)
    if len(stages) > 1:
        numbers["stages"] = len(stages)
    failing = [j for j in judged if not j.ok]
    if not failing:
        layers = list(dict.fromkeys(layer for j in judged for layer in j.layers))
        if len(stages) == 1:
            summary = f"{'the custom loop' if stages[0].custom else 'fit'} kept all {judged[0].kept} unchanged"
        else:
            summary = "every stage kept its frozen layers unchanged: " + "; ".join(
                f"{j.name}: {j.kept}" for j in judged
            )
        return passed(NAME, pipeline, summary, f"Frozen layers: {listed(layers)}.", **numbers)
    parts = [part for j in failing for part in j.parts]
    details = [detail for j in failing for detail in j.details]
    return failed(NAME, pipeline, "; ".join(parts), "\n".join(details), **numbers)


@dataclass
class _Judged:
    """What one stage did to the layers frozen in it."""

    name: str  # "" for a run of one fit, else e.g. "stage 1 of 2 (fit 1)"
    layers: list
    weights: list
    statistics: list
    moved_weights: list = field(default_factory=list)
    moved_statistics: list = field(default_factory=list)
    batch_statistics: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    details: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.parts

    @property
    def kept(self) -> str:
        return f"{len(self.weights)} weights and {len(self.statistics)} statistics of {len(self.layers)} frozen layers"


def _judge_stage(run: TrainingRun, stage: Stage, of: int, probed: dict) -> _Judged:
    roles = variable_roles(run, stage.trainable)
    weights = [r for r in roles if r.kind == FROZEN]
    statistics = [r for r in roles if r.kind == FROZEN_STATISTIC]
    layers = list(dict.fromkeys(r.layer for r in roles if r.kind in (FROZEN, FROZEN_STATISTIC)))
    judged = _Judged(stage_name(stage, of), layers, weights, statistics)
    if not layers:
        return judged
    judged.moved_weights = moved_weights = _moved(stage, weights)
    judged.moved_statistics = moved_statistics = _moved(stage, statistics)
    judged.batch_statistics = batch_statistics = _using_batch_statistics(run, layers, probed)
    where = f"in {judged.name}: " if judged.name else ""
    where_details = f"In {judged.name}: " if judged.name else ""
    if moved_weights:
        judged.parts.append(f"{where}frozen weights moved: {_count(moved_weights, weights)}")
        judged.details.append(where_details + _weights_moved(run, stage, moved_weights, weights))
    if moved_statistics:
        label = (
            "frozen BN moving statistics moved"
            if any(r.batchnorm for r, _ in moved_statistics)
            else "frozen layers' statistics moved"
        )
        judged.parts.append(f"{where if not moved_weights else ''}{label}: {_count(moved_statistics, statistics)}")
        judged.details.append(
            (where_details if not moved_weights else "")
            + _statistics_moved(moved_statistics, statistics, with_weights=bool(moved_weights))
        )
    if batch_statistics and not moved_weights:
        normalizing = sum(1 for r in roles if r.kind == FROZEN_STATISTIC and r.path.endswith("moving_mean"))
        judged.parts.append(
            f"{where if not moved_statistics else ''}frozen BN layers normalize with batch statistics in training mode: "
            f"{len(batch_statistics)} of {normalizing} (e.g. {batch_statistics[0][0]})"
        )
        judged.details.append(
            (where_details if not moved_statistics else "")
            + _on_batch_statistics(batch_statistics, explained=bool(moved_statistics))
        )
    return judged


def _numbers(judged: list[_Judged]) -> dict:
    """The key numbers: a run of one fit's own; over several stages, layers frozen in any stage
    and the sums of the stages' counts."""
    numbers = {
        "frozen_layers": len({layer for j in judged for layer in j.layers}),
        "frozen_weights": sum(len(j.weights) for j in judged),
        "frozen_weights_moved": sum(len(j.moved_weights) for j in judged),
        "frozen_statistics": sum(len(j.statistics) for j in judged),
        "frozen_statistics_moved": sum(len(j.moved_statistics) for j in judged),
        "frozen_batchnorm_on_batch_statistics": sum(len(j.batch_statistics) for j in judged),
    }
    moved_weights = sorted((m for j in judged for m in j.moved_weights), key=_order)
    moved_statistics = sorted((m for j in judged for m in j.moved_statistics), key=_order)
    if moved_weights:
        numbers["largest_weight_change"] = moved_weights[0][1]
    if moved_statistics:
        numbers["largest_statistic_change"] = moved_statistics[0][1]
    return numbers


def _using_batch_statistics(run: TrainingRun, frozen: list[str], probed: dict) -> list[tuple[str, str]]:
    """(path, class name) of the frozen layers with moving statistics that fit runs on batch statistics.

    A layer frozen in an earlier stage and trainable now is probed frozen, as that stage ran it;
    `probed` keeps each layer's answer across stages."""
    from pipeline_checks.batchnorm.frozen_probe import uses_batch_statistics_when_frozen
    from pipeline_checks.model.layers import walk_layers

    frozen = set(frozen)
    for found in walk_layers(run.model):
        if found.path not in frozen or found.path in probed:
            continue
        layer, trainable = found.layer, found.layer.trainable
        try:
            if trainable:
                layer.trainable = False
            uses = uses_batch_statistics_when_frozen(layer, run.seed)
        finally:
            if trainable:
                layer.trainable = True
        probed[found.path] = (found.path, f"{type(layer).__name__} of {type(layer).__module__}") if uses else None
    return [
        probed[path]
        for path in dict.fromkeys(f.path for f in walk_layers(run.model))
        if path in frozen and probed.get(path)
    ]


def _on_batch_statistics(layers: list[tuple[str, str]], explained: bool) -> str:
    classes = sorted({cls for _, cls in layers})
    shown = listed(path for path, _ in layers)
    text = (
        f"Frozen layers normalize with their batch statistics in fit (training mode) but with their moving "
        f"statistics in evaluate and predict: {shown} ({', '.join(classes)}). Fit trains the layers above on "
        "activations inference never produces: fit accuracy falls while evaluate stays high."
    )
    if explained:
        return text + " Same cause and fix as above."
    return text + (
        f"\n  Likely cause: {', '.join(classes)} ignores trainable=False in training mode "
        "(tf.compat.v1.keras.layers.BatchNormalization, or a layer ported from it).\n"
        "  Fix: use keras.layers.BatchNormalization, which runs in inference mode when frozen, or have the layer use "
        "its moving statistics when not self.trainable."
    )


def _moved(stage: Stage, roles: list[VariableRole]) -> list[tuple[VariableRole, float]]:
    """The roles that moved between the start and the end of the stage, the largest change first."""
    moves = [(r, change(r, stage.start, stage.end)) for r in roles]
    return sorted(((r, amount) for r, amount in moves if amount != 0.0), key=_order)


def _order(move) -> float:
    return -np.inf if np.isnan(move[1]) else -move[1]


def _count(moved, of) -> str:
    layers = len({r.layer for r, _ in moved})
    largest, amount = moved[0]
    return f"{len(moved)} of {len(of)} in {layers} layer{'s' if layers != 1 else ''} (largest change {amount:.3g} in {largest.path})"


def _weights_moved(run: TrainingRun, stage: Stage, moved, weights) -> str:
    from pipeline_checks.model import compat

    if stage.custom:
        return (
            f"Frozen weights moved in the custom loop ({len(moved)} of {len(weights)}, not in "
            f"model.trainable_weights once the loop had set it up): {_changes(moved)}.\n"
            "  Likely cause: the loop applies gradients to (or assigns) more than model.trainable_weights, "
            "e.g. model.weights or model.variables, or a list of variables taken before the layers were frozen.\n"
            "  Fix: take the gradients of model.trainable_weights (read after setting trainable) and apply them to "
            "the same list."
        )
    steps, ours = compat.training_steps(run.model), len(run.batch_losses)
    before = ""
    if len(run.stages) <= 1 and steps is not None and steps > ours:
        before = (
            f" The optimizer had taken {steps - ours} steps before this run's fit, so build_model "
            "trained the model and then froze layers without compiling again."
        )
    elif stage.index > 1:
        before = f" Here an earlier stage's fit traced it: {stage.label} reuses it."
    return (
        f"Frozen weights moved in fit ({len(moved)} of {len(weights)}, not in model.trainable_weights "
        f"when fit started): {_changes(moved)}.\n"
        "  Likely cause: trainable changed after the train function was built: fit traced its train step "
        f"with the trainable weights of that moment and keeps updating them.{before} Else a custom "
        "train_step, callback or layer assigns to them.\n"
        "  Fix: call compile() again after setting trainable (model.compile(optimizer=..., loss=..., "
        "metrics=[...])), before the next fit."
    )


def _statistics_moved(moved, statistics, with_weights: bool) -> str:
    what = (
        "BatchNormalization moving statistics"
        if any(r.batchnorm for r, _ in moved)
        else "statistics (non-trainable variables)"
    )
    text = f"Frozen layers' {what} moved in fit ({len(moved)} of {len(statistics)}): {_changes(moved)}.\n"
    if with_weights:
        return (
            text
            + "  Likely cause: the same stale train function trained the frozen layers in training mode; the fix above fixes both."
        )
    classes = sorted({r.layer_class for r, _ in moved})
    return text + (
        f"  Likely cause: {', '.join(classes)} updates its statistics in call(training=True) even when "
        "trainable=False (keras.layers.BatchNormalization stops; tf.compat.v1 and ported or custom "
        "normalization layers do not), so fit also normalizes with batch statistics that inference never uses.\n"
        "  Fix: use keras.layers.BatchNormalization, or have the layer skip the update and use its moving "
        "statistics when not self.trainable; call a frozen base with training=False (x = base(inputs, training=False))."
    )


def _changes(moved) -> str:
    return listed(f"{r.path} by up to {amount:.3g}" for r, amount in moved)
