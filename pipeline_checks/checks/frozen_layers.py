"""Check: layers frozen before fit keep their weights and their statistics through fit.

Which variables are weights and which are statistics, and when a layer counts as frozen,
is `pipeline_checks.run.variables`' to say (`variable_roles`). A run in stages (a pipeline's
own `train` function calling fit more than once) is judged stage by stage: each stage's
frozen layers, from its start to its end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.checks.family import family
from pipeline_checks.model.frozen_normalization import on_batch_statistics
from pipeline_checks.results.check_result import CheckResult, passed
from pipeline_checks.results.verdict import Finding, verdict
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
    while fit's accuracy collapses). Statistics of layers that are not frozen may move:
    that is how they learn.

    With the pipeline's own `train` function, each fit it calls is a stage with its own
    frozen set (model.trainable_weights when that fit starts), judged from the stage's start
    to its end, and failures name the stage ("in stage 1 of 2 (fit 1)"): a base frozen for
    the head's stage must not move in it, and may move once unfrozen (and recompiled).

    Args:
        pipeline: a `Pipeline`.
        seed: the seed of the shared training run.

    Returns:
        A `CheckResult`; its details list what moved, by how much, the cause and the fix,
        then the frozen layers.

    Example:
        >>> check_frozen_layers(pipeline).raise_if_failed()
    """
    run = shared_run(pipeline, seed)
    stages = stages_of(run)
    probed: dict[str, tuple | None] = {}  # layer path -> (path, class) where it runs on batch statistics
    judged = [_frozen_in_stage(run, stage, len(stages), probed) for stage in stages]
    judged = [j for j in judged if j.layers]
    if not judged:
        return passed(NAME, pipeline, "no layer is frozen: nothing to keep still", frozen_layers=0)
    numbers = _numbers(judged)
    if len(stages) > 1:
        numbers["stages"] = len(stages)
    if len(stages) == 1:
        kept = f"{'the custom loop' if stages[0].custom else 'fit'} kept all {judged[0].kept} unchanged"
    else:
        kept = "every stage kept its frozen layers unchanged: " + "; ".join(f"{j.name}: {j.kept}" for j in judged)
    layers = list(dict.fromkeys(layer for j in judged for layer in j.layers))
    findings = [finding for j in judged for finding in j.findings]
    return verdict(NAME, pipeline, findings, kept, f"Frozen layers: {listed(layers)}.", **numbers)


@dataclass(frozen=True)
class FrozenInStage:
    """What one stage did to the layers frozen in it: (role, change) pairs of what moved."""

    name: str  # "" for a run of one fit, else e.g. "stage 1 of 2 (fit 1)"
    layers: list
    weights: list
    statistics: list
    moved_weights: list
    moved_statistics: list
    batch_statistics: list  # (path, class) of frozen layers that normalize with batch statistics
    findings: list[Finding]

    @property
    def kept(self) -> str:
        return f"{len(self.weights)} weights and {len(self.statistics)} statistics of {len(self.layers)} frozen layers"


def _frozen_in_stage(run: TrainingRun, stage: Stage, of: int, probed: dict) -> FrozenInStage:
    roles = variable_roles(run, stage.trainable)
    weights = [r for r in roles if r.kind == FROZEN]
    statistics = [r for r in roles if r.kind == FROZEN_STATISTIC]
    layers = list(dict.fromkeys(r.layer for r in roles if r.kind in (FROZEN, FROZEN_STATISTIC)))
    name = stage_name(stage, of)
    if not layers:
        return FrozenInStage(name, layers, weights, statistics, [], [], [], [])
    moved_weights, moved_statistics = _moved(stage, weights), _moved(stage, statistics)
    batch_statistics = on_batch_statistics(run.model, layers, run.seed, probed)
    where = f"in {name}: " if name else ""
    findings = []
    if moved_weights:
        findings.append(_weights_moved(run, stage, where, moved_weights, weights))
    if moved_statistics:
        findings.append(_statistics_moved(where, moved_statistics, statistics, with_weights=bool(moved_weights)))
    if batch_statistics and not moved_weights:
        normalizing = sum(1 for r in statistics if r.path.endswith("moving_mean"))
        findings.append(_on_batch_statistics(where, batch_statistics, normalizing, bool(moved_statistics)))
    return FrozenInStage(name, layers, weights, statistics, moved_weights, moved_statistics, batch_statistics, findings)


def _numbers(judged: list[FrozenInStage]) -> dict:
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


def _weights_moved(run: TrainingRun, stage: Stage, where: str, moved, weights) -> Finding:
    from pipeline_checks.model import compat

    summary = f"{where}frozen weights moved: {_count(moved, weights)}"
    if stage.custom:
        return Finding(
            summary,
            f"not in model.trainable_weights once the custom loop had set it up, yet it changed {_changes(moved)}.",
            cause="the loop applies gradients to (or assigns) more than model.trainable_weights, e.g. model.weights "
            "or model.variables, or a list of variables taken before the layers were frozen",
            fix="take the gradients of model.trainable_weights (read after setting trainable) and apply them to "
            "the same list.",
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
    return Finding(
        summary,
        f"not in model.trainable_weights when fit started, yet fit changed {_changes(moved)}.",
        cause="trainable changed after the train function was built: fit traced its train step with the "
        f"trainable weights of that moment and keeps updating them.{before} Else a custom train_step, "
        "callback or layer assigns to them",
        fix="call compile() again after setting trainable (model.compile(optimizer=..., loss=..., "
        "metrics=[...])), before the next fit.",
    )


def _statistics_moved(where: str, moved, statistics, with_weights: bool) -> Finding:
    batchnorm = any(r.batchnorm for r, _ in moved)
    label = "frozen BN moving statistics moved" if batchnorm else "frozen layers' statistics moved"
    what = "BatchNormalization moving statistics" if batchnorm else "statistics (non-trainable variables)"
    summary, detail = f"{where}{label}: {_count(moved, statistics)}", f"{what} changed in fit: {_changes(moved)}."
    if with_weights:
        cause = "the same stale train function trained the frozen layers in training mode; the fix above fixes both"
        return Finding(summary, detail, cause=cause)
    classes = ", ".join(sorted({r.layer_class for r, _ in moved}))
    return Finding(
        summary,
        detail,
        cause=f"{classes} updates its statistics in call(training=True) even when trainable=False "
        "(keras.layers.BatchNormalization stops; tf.compat.v1 and ported or custom normalization layers do not), "
        "so fit also normalizes with batch statistics that inference never uses",
        fix="use keras.layers.BatchNormalization, or have the layer skip the update and use its moving statistics "
        "when not self.trainable; call a frozen base with training=False (x = base(inputs, training=False)).",
    )


def _on_batch_statistics(where: str, layers: list[tuple[str, str]], normalizing: int, explained: bool) -> Finding:
    classes = ", ".join(sorted({cls for _, cls in layers}))
    summary = (
        f"{where}frozen BN layers normalize with batch statistics in training mode: "
        f"{len(layers)} of {normalizing} (e.g. {layers[0][0]})"
    )
    detail = (
        f"{listed(path for path, _ in layers)} ({classes}) normalize with their batch statistics in fit (training "
        "mode) but with their moving statistics in evaluate and predict, so fit trains the layers above on "
        "activations inference never produces: fit accuracy falls while evaluate stays high."
    )
    if explained:
        return Finding(summary, detail + " Same cause and fix as above.")
    return Finding(
        summary,
        detail,
        cause=f"{classes} ignores trainable=False in training mode (tf.compat.v1.keras.layers.BatchNormalization, "
        "or a layer ported from it)",
        fix="use keras.layers.BatchNormalization, which runs in inference mode when frozen, or have the layer use "
        "its moving statistics when not self.trainable.",
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
    in_layers = f"{layers} layer{'s' if layers != 1 else ''}"
    return f"{len(moved)} of {len(of)} in {in_layers} (largest change {amount:.3g} in {largest.path})"


def _changes(moved) -> str:
    return listed(f"{r.path} by up to {amount:.3g}" for r, amount in moved)
