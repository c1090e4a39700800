"""Check: layers frozen before fit keep their weights and their statistics through fit.

Which variables count: a layer's weights are the variables it created trainable (kernel,
bias, gamma, beta), whether or not it is frozen now; its statistics are the variables it
created non-trainable (BatchNormalization moving mean and variance, or any layer's own
running statistics). Random-generator states, optimizer and metric variables are neither.
A layer is frozen when fit was not to train its weights (they are missing from the model's
`trainable_weights` when the run starts), or when it has no weights and `trainable=False`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline_checks.results.check_result import CheckResult, failed, passed
from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.run.training import TrainingRun, shared_run

NAME = "frozen_layers"
SHOWN = 3  # variables named in a message; the rest are counted

TRAINED, FROZEN, STATISTIC, FROZEN_STATISTIC = "trained", "frozen", "statistic", "frozen statistic"


@dataclass(frozen=True)
class VariableRole:
    """What one of the run's variables is: a trained or frozen weight, or a statistic.

    Attributes:
        index: its position in `run.weights` (and in the run's snapshots).
        path: the owning layer's path and the variable's name, e.g. "base/conv2d/kernel".
        layer: the owning layer's path, e.g. "base/conv2d".
        layer_class: the owning layer's class name, e.g. "BatchNormalization".
        kind: TRAINED, FROZEN, STATISTIC (of a layer that is not frozen) or FROZEN_STATISTIC.
    """

    index: int
    path: str
    layer: str
    layer_class: str
    kind: str

    @property
    def batchnorm(self) -> bool:
        name = self.layer_class.lower()
        return "batchnorm" in name or "batch_norm" in name or self.path.endswith(("moving_mean", "moving_variance"))


def variable_roles(run: TrainingRun) -> list[VariableRole]:
    """The role of each of the run's variables that is a weight or a statistic, in `run.weights` order."""
    from pipeline_checks.model import compat
    from pipeline_checks.batchnorm.statistics import walk_layers

    owners = {}  # id(variable) -> (layer path, layer, created trainable)
    for path, layer in [(run.model.name, run.model), *((f.path, f.layer) for f in walk_layers(run.model))]:
        created_trainable, created_non_trainable = _own_variables(layer)
        for variable in created_trainable:
            owners.setdefault(id(variable), (path, layer, True))
        for variable in created_non_trainable:
            owners.setdefault(id(variable), (path, layer, False))
    frozen_layers = {id(layer) for _, layer, weight in owners.values() if weight and not _is_trained(run, layer)}
    roles = []
    for index, variable in enumerate(run.weights):
        name = compat.variable_path(variable)
        if id(variable) not in owners or "seed_generator" in name:
            continue
        path, layer, weight = owners[id(variable)]
        frozen = id(layer) in frozen_layers or (not _own_variables(layer)[0] and not layer.trainable)
        if weight:
            kind = FROZEN if id(variable) not in run.trainable else TRAINED
        else:
            kind = FROZEN_STATISTIC if frozen else STATISTIC
        short = name.rsplit("/", 1)[-1].split(":")[0]
        roles.append(VariableRole(index, f"{path}/{short}", path, type(layer).__name__, kind))
    return roles


def change(role: VariableRole, before: tuple, after: tuple) -> float:
    """How far a variable moved between two snapshots: the largest absolute change, 0 if none.

    NaN where it became (or stopped being) non-finite: that counts as moved.
    """
    a, b = before[role.index], after[role.index]
    if np.array_equal(a, b, equal_nan=True):
        return 0.0
    with np.errstate(all="ignore"):
        difference = np.abs(b.astype(np.float64) - a.astype(np.float64))
    return float(np.nanmax(difference)) if np.isfinite(difference).any() else float("nan")


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
        return passed(NAME, pipeline, f"fit kept all {kept} unchanged", f"Frozen layers: {_listed(layers)}.", **numbers)
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
    from pipeline_checks.batchnorm.statistics import walk_layers
    from pipeline_checks.batchnorm.frozen_probe import uses_batch_statistics_when_frozen

    frozen = set(frozen)
    return [
        (f.path, f"{type(f.layer).__name__} of {type(f.layer).__module__}")
        for f in walk_layers(run.model)
        if f.path in frozen and uses_batch_statistics_when_frozen(f.layer, run.seed)
    ]


def _on_batch_statistics(layers: list[tuple[str, str]], explained: bool) -> str:
    classes = sorted({cls for _, cls in layers})
    shown = ", ".join(path for path, _ in layers[:SHOWN]) + (f" and {len(layers) - SHOWN} more" if len(layers) > SHOWN else "")
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
    shown = ", ".join(f"{r.path} by up to {amount:.3g}" for r, amount in moved[:SHOWN])
    return shown + (f" and {len(moved) - SHOWN} more" if len(moved) > SHOWN else "")


def _listed(names) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _is_trained(run: TrainingRun, layer) -> bool:
    """Whether fit was to train the weights `layer` created (all of them in trainable_weights)."""
    return all(id(v) in run.trainable for v in _own_variables(layer)[0])


def _own_variables(layer) -> tuple[list, list]:
    """The variables `layer` itself created, (created trainable, created non-trainable),
    sublayers' excluded; freezing does not move them between the two (Keras 2 and 3)."""
    for trainable, non_trainable in (
        ("_trainable_variables", "_non_trainable_variables"),  # Keras 3
        ("_trainable_weights", "_non_trainable_weights"),  # Keras 2 (tf_keras)
    ):
        if hasattr(layer, trainable) and hasattr(layer, non_trainable):
            return list(getattr(layer, trainable)), list(getattr(layer, non_trainable))
    return [], []
