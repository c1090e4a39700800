"""Check: layers frozen before fit keep their weights and their statistics through fit.

Which variables are weights and which are statistics, and when a layer counts as frozen,
is `pipeline_checks.run.variables`' to say (`variable_roles`).
"""

from __future__ import annotations

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.run.training import TrainingRun, shared_run
from pipeline_checks.run.variables import (
    FROZEN,
    FROZEN_STATISTIC,
    VariableRole,
    change,
    variable_roles,
)

NAME = "frozen_layers"


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
    roles = variable_roles(run)
    weights = [r for r in roles if r.kind == FROZEN]
    statistics = [r for r in roles if r.kind == FROZEN_STATISTIC]
    layers = list(dict.fromkeys(r.layer for r in roles if r.kind in (FROZEN, FROZEN_STATISTIC)))
    if not layers:
        return passed(NAME, pipeline, "no layer is frozen: nothing to keep still", frozen_layers=0)
    moved_weights = _moved(run, weights)
    moved_statistics = _moved(run, statistics)
    batch_statistics = _using_batch_statistics(run, layers)
    numbers = {
        "frozen_layers": len(layers),
        "frozen_weights": len(weights),
        "frozen_weights_moved": len(moved_weights),
        "frozen_statistics": len(statistics),
        "frozen_statistics_moved": len(moved_statistics),
        "frozen_batchnorm_on_batch_statistics": len(batch_statistics),
    }
    if moved_weights:
        numbers["largest_weight_change"] = moved_weights[0][1]
    if moved_statistics:
        numbers["largest_statistic_change"] = moved_statistics[0][1]
    kept = f"{len(weights)} weights and {len(statistics)} statistics of {len(layers)} frozen layers"
    if not moved_weights and not moved_statistics and not batch_statistics:
        return passed(NAME, pipeline, f"fit kept all {kept} unchanged", f"Frozen layers: {listed(layers)}.", **numbers)
    parts, details = [], []
    if moved_weights:
        parts.append(f"frozen weights moved: {_count(moved_weights, weights)}")
        details.append(_weights_moved(run, moved_weights, weights))
    if moved_statistics:
        label = "frozen BN moving statistics moved" if any(r.batchnorm for r, _ in moved_statistics) else "frozen layers' statistics moved"
        parts.append(f"{label}: {_count(moved_statistics, statistics)}")
        details.append(_statistics_moved(moved_statistics, statistics, with_weights=bool(moved_weights)))
    if batch_statistics and not moved_weights:
        normalizing = sum(1 for r in roles if r.kind == FROZEN_STATISTIC and r.path.endswith("moving_mean"))
        parts.append(
            f"frozen BN layers normalize with batch statistics in training mode: {len(batch_statistics)} of "
            f"{normalizing} (e.g. {batch_statistics[0][0]})"
        )
        details.append(_on_batch_statistics(batch_statistics, explained=bool(moved_statistics)))
    return failed(NAME, pipeline, "; ".join(parts), "\n".join(details), **numbers)


def _using_batch_statistics(run: TrainingRun, frozen: list[str]) -> list[tuple[str, str]]:
    """(path, class name) of the frozen layers with moving statistics that fit runs on batch statistics."""
    from pipeline_checks.batchnorm.frozen_probe import uses_batch_statistics_when_frozen
    from pipeline_checks.model.layers import walk_layers

    frozen = set(frozen)
    return [
        (f.path, f"{type(f.layer).__name__} of {type(f.layer).__module__}")
        for f in walk_layers(run.model)
        if f.path in frozen and uses_batch_statistics_when_frozen(f.layer, run.seed)
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


def _moved(run: TrainingRun, roles: list[VariableRole]) -> list[tuple[VariableRole, float]]:
    """The roles that moved between the start and the end of fit, the largest change first."""
    moves = [(r, change(r, run.initial, run.final)) for r in roles]
    moves = [(r, amount) for r, amount in moves if amount != 0.0]
    return sorted(moves, key=lambda move: -np.inf if np.isnan(move[1]) else -move[1])


def _count(moved, of) -> str:
    layers = len({r.layer for r, _ in moved})
    largest, amount = moved[0]
    return f"{len(moved)} of {len(of)} in {layers} layer{'s' if layers != 1 else ''} (largest change {amount:.3g} in {largest.path})"


def _weights_moved(run: TrainingRun, moved, weights) -> str:
    from pipeline_checks.model import compat

    steps, ours = compat.training_steps(run.model), len(run.batch_losses)
    before = ""
    if steps is not None and steps > ours:
        before = (
            f" The optimizer had taken {steps - ours} steps before this run's fit, so build_model "
            "trained the model and then froze layers without compiling again."
        )
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
    what = "BatchNormalization moving statistics" if any(r.batchnorm for r, _ in moved) else "statistics (non-trainable variables)"
    text = f"Frozen layers' {what} moved in fit ({len(moved)} of {len(statistics)}): {_changes(moved)}.\n"
    if with_weights:
        return text + "  Likely cause: the same stale train function trained the frozen layers in training mode; the fix above fixes both."
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

