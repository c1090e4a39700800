"""Check: training moves every weight fit trains, and no weight it does not."""

from __future__ import annotations

import itertools

from pipeline_checks._text import SHOWN, listed
from pipeline_checks.checks.family import family
from pipeline_checks.results.check_result import CheckResult
from pipeline_checks.results.verdict import Finding, verdict
from pipeline_checks.run.training import TrainingRun, shared_run, stages_of
from pipeline_checks.run.variables import (
    FROZEN,
    TRAINED,
    VariableRole,
    change,
    current_learning_rate,
    variable_roles,
)

NAME = "variables_change"


@family(NAME)
def check_variables_change(pipeline, seed: int = 0) -> CheckResult:
    """Fail when a trainable weight never changes in fit, or a frozen one changes.

    Weights are the variables layers create trainable (kernel, bias, gamma, beta); those in
    the model's `trainable_weights` when fit starts must move, the others (frozen) must not.
    Statistics such as BatchNormalization moving averages are not weights: they move with
    no gradient at all, so they prove nothing here and are left out.

    A weight is expected to move in the first step. One that moves only later passes, and is
    listed in the details: its gradient was exactly zero on the first batch (e.g. ReLU units
    no image of that batch activates), and a later batch reached it. A weight that never
    moves in the whole fit fails: nothing connects it to the loss. Frozen layers that stay
    unchanged are listed in the details and never fail the check (freezing one by mistake is
    a choice it cannot judge); frozen weights that change fail it. A model with no trainable
    weight at all fails: its fit trains nothing.

    Args:
        pipeline: a `Pipeline`.
        seed: the seed of the shared training run.

    Returns:
        A `CheckResult`; its details name the unchanged (or moved frozen) weights, the
        likely cause and the fix, and list the frozen layers.

    Example:
        >>> check_variables_change(pipeline).raise_if_failed()
    """
    run = shared_run(pipeline, seed)
    roles = variable_roles(run)
    trained = [r for r in roles if r.kind == TRAINED]
    frozen = [r for r in roles if r.kind == FROZEN]
    first_step = run.after_first_step if run.after_first_step is not None else run.final
    unchanged = [r for r in trained if change(r, run.initial, run.final) == 0.0]
    first_trainable = stages_of(run)[0].trainable  # the first step is the first stage's
    later = [
        r
        for r in trained
        if r not in unchanged
        and id(run.weights[r.index]) in first_trainable
        and change(r, run.initial, first_step) == 0.0
    ]
    frozen_moved = [r for r in frozen if change(r, run.initial, run.final) != 0.0]
    steps = len(run.batch_losses)
    numbers = {
        "trainable_weights": len(trained),
        "unchanged": len(unchanged),
        "changed_only_later": len(later),
        "frozen_weights": len(frozen),
        "frozen_moved": len(frozen_moved),
    }
    findings = []
    if not trained:
        findings.append(
            Finding(
                "the model has no trainable weights: fit trains nothing",
                fix="set trainable = True on the layers to train, then compile() again.",
            )
        )
    if unchanged:
        findings.append(_unchanged(run, trained, unchanged))
    if frozen_moved:
        findings.append(_frozen_moved(run, frozen, frozen_moved))
    during = "in the custom loop" if run.custom_loop else f"in fit ({steps} steps)"
    changed = f"all {len(trained)} trainable weights changed {during}"
    if later:
        changed += f", {len(later)} only after the first step"
    return verdict(NAME, pipeline, findings, changed, _notes(later, frozen, frozen_moved), **numbers)


def _unchanged(run: TrainingRun, trained: list[VariableRole], unchanged: list[VariableRole]) -> Finding:
    during = "the custom loop" if run.custom_loop else f"{len(run.batch_losses)} steps of fit"
    summary = f"{len(unchanged)} of {len(trained)} trainable weights never changed in {during} ({_names(unchanged)})"
    rate = current_learning_rate(run.model)
    unfrozen = _unfrozen_in_stage(run, unchanged)
    if unfrozen is not None:
        stage, before = unfrozen
        cause = (
            f"they were frozen in {before.label} and set trainable for {stage.label} (stage {stage.index} of "
            f"{len(run.stages)}), without compiling again: {stage.label} reused the train function {before.label} "
            "traced with the trainable weights of that moment, which left them out"
        )
        fix = (
            "call compile() again after setting trainable = True, before the next fit "
            "(the keras.io fine-tuning recipe)."
        )
    elif rate == 0.0:
        cause = (
            "the optimizer's learning rate is 0, so no step moves any weight "
            "(BatchNormalization statistics still move: they need no gradient)"
        )
        fix = "set a learning rate above 0 (e.g. 1e-3 for Adam), and check any learning-rate schedule's first value."
    elif len(unchanged) == len(trained):
        cause = (
            "no gradient reaches any weight: the loss does not depend on them (a stop_gradient or a "
            "non-differentiable op such as argmax, round or a cast to int before the output), or a learning "
            "rate that rounds to 0"
        )
        fix = "make the output a differentiable function of the weights; see check_numerics for the gradients."
    elif unchanged == trained[: len(unchanged)]:
        cause = (
            f"every weight up to {unchanged[-1].layer} stopped, and all after it train: a stop_gradient "
            "(or a non-differentiable op: argmax, round, a cast to int) right after it cuts the path to the loss"
        )
        fix = (
            "remove the stop_gradient; to freeze those layers on purpose, set trainable = False on them "
            "and compile() again."
        )
    else:
        cause = (
            "these weights are disconnected from the loss: a branch whose output is multiplied by 0, "
            "passed through stop_gradient or never used, or ReLU units that no image activates (dead)"
        )
        fix = (
            "connect the branch to the output (or remove it); for dead units, lower the learning rate "
            "or use another initializer."
        )
    rate_text = "" if rate is None else f" (learning rate {rate:g})"
    detail = f"unchanged from initialization to the end of fit{rate_text}: {_names(unchanged, limit=2 * SHOWN)}."
    return Finding(summary, detail, fix, cause)


def _frozen_moved(run: TrainingRun, frozen: list[VariableRole], moved: list[VariableRole]) -> Finding:
    summary = f"{len(moved)} of {len(frozen)} frozen weights changed ({_names(moved)})"
    if run.custom_loop:
        return Finding(
            summary,
            "they were not in model.trainable_weights once the custom loop had set it up.",
            cause="the loop trains a list of variables other than model.trainable_weights (taken before "
            "freezing, or model.weights)",
            fix="train model.trainable_weights, read after setting trainable; check_frozen_layers has the details.",
        )
    return Finding(
        summary,
        "they were not in model.trainable_weights when fit started.",
        cause="trainable was set to False after fit's train function was built, without compiling again",
        fix="call compile() again after setting trainable; check_frozen_layers has the details.",
    )


def _unfrozen_in_stage(run: TrainingRun, unchanged: list[VariableRole]):
    """(stage, the stage before it) where every unchanged weight had just been made trainable, in
    a run in stages; None otherwise."""
    stages = stages_of(run)
    for before, stage in itertools.pairwise(stages):
        ids = {id(run.weights[r.index]) for r in unchanged}
        if not stage.custom and ids <= stage.trainable and not ids & before.trainable:
            return stage, before
    return None


def _notes(later, frozen, frozen_moved) -> str:
    notes = []
    if later:
        notes.append(
            f"Changed only after the first step (zero gradient on the first batch): {_names(later, limit=2 * SHOWN)}."
        )
    still = list(dict.fromkeys(r.layer for r in frozen if r not in frozen_moved))
    if still:
        shown = listed(still)
        notes.append(
            f"Frozen, not trained and unchanged: {len(still)} layer{'s' if len(still) != 1 else ''} ({shown}); "
            "if any should learn, set trainable = True and compile() again."
        )
    return "\n".join(notes)


def _names(roles: list[VariableRole], limit: int = SHOWN) -> str:
    return listed((r.path for r in roles), shown=limit)
