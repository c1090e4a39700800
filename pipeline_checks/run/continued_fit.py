"""More epochs of a run's fit, continued from where it ended, and then undone.

A tiny dataset trained for a program's own epochs is not always memorized: a correct model
that reaches 0.96 in 30 epochs gets to 1.0 with a few more, as it would with the steps it takes
at full scale. To tell "not done yet" from "cannot learn", the overfit check continues the
shared run's fit from its final state, bounded by `MORE_EPOCHS` times the program's epochs and
stopped at the first epoch that reaches the target, and then puts every variable back (weights,
statistics, optimizer slots and step count, random-generator states, metric states), so the
model every other check reads is bit for bit the one fit left.

For one output of a model with several, the whole model trains on, with every loss, and the
output's own logs are read. The continuation runs `fit` on the run's model with the program's own data and fit arguments
(its traced training step is reused: no tracing), without the program's callbacks (no files
written, no early stopping or schedule of its own: the optimizer keeps the learning rate fit
ended with) and without validation data. It is not run for a custom loop (no fit to continue)
or for a fit recorded elsewhere (a `Recorder`'s: the model is the repository's own).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline_checks.errors import pipeline_step
from pipeline_checks.model import compat
from pipeline_checks.model.output_models import output_logs, output_names
from pipeline_checks.model.state import VariableSnapshot
from pipeline_checks.run.training import TrainingRun

# At most this many times the program's epochs are added: a learning rate 100 times too small
# makes a hundredth of the progress per step, so ten times the steps still leave it short.
MORE_EPOCHS = 10
# What fit must not do in the continuation: these arguments are dropped from the program's.
LEFT_OUT = ("callbacks", "epochs", "initial_epoch", "validation_data", "validation_steps", "validation_freq", "verbose")
LEFT_OUT += ("validation_batch_size",)


@dataclass(frozen=True)
class ContinuedFit:
    """What the continuation reached, and what it cost.

    Attributes:
        epochs: the epochs it ran (it stops at the first that reaches the target).
        budget: the epochs it was allowed: `MORE_EPOCHS` times the program's.
        curve: the accuracy after each of its epochs, as `reached` read it.
        reached: whether its last epoch reached the target.
        inference: what `after` measured on the continued model (before it was put back).
        seconds: its wall time, putting the model back included.
    """

    epochs: int
    budget: int
    curve: tuple
    reached: bool
    inference: object
    seconds: float

    @property
    def best(self) -> float:
        finite = [v for v in self.curve if math.isfinite(v)]
        return max(finite) if finite else math.nan


def can_continue(run: TrainingRun) -> str:
    """Why the run's fit cannot be continued, for messages; "" where it can."""
    if not run.stages:
        return "a fit recorded elsewhere is not continued: the model is the repository's own"
    if run.custom_loop:
        return "a custom loop has no fit to continue"
    return ""


def continue_fit(
    run: TrainingRun, epochs: int, accuracy: Callable[[dict], float], target: float, after: Callable[[], object]
) -> ContinuedFit:
    """Continue the run's fit for up to `MORE_EPOCHS` times `epochs` (the program's, every stage's
    together), stopping at the first epoch whose `accuracy(logs)` is at least `target`; call
    `after()` on the continued model; then put every variable of the model and its optimizer
    back as fit left them.

    Raises `PipelineRunError` (the pipeline named) where the program's fit raises."""
    start = time.perf_counter()
    trained = run.whole or run  # one output of several: the whole model trains on, with every loss
    model, pipeline = trained.model, trained.pipeline
    logs_of = _logs_of(run)
    budget = MORE_EPOCHS * max(1, epochs)
    variables = [
        *model.variables,
        *compat.optimizer_variables(model.optimizer),
        *compat.random_generator_states(model),
        *compat.metric_variables(model),
    ]
    ended = VariableSnapshot.of(variables, on_disk=True)
    history, curve = model.history, []
    keras = compat.keras()

    class StopAtTarget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            curve.append(float(accuracy(logs_of(dict(logs or {})))))
            if curve[-1] >= target:
                self.model.stop_training = True

    arguments = {
        k: v for k, v in pipeline.fit_arguments(trained.x_train, trained.y_train, run.seed).items() if k not in LEFT_OUT
    }
    measured = None
    try:
        compat.set_random_seed(run.seed, keep_compiled=True)  # the same continuation for the same run
        with pipeline_step(pipeline, "fit (continued by the overfit check)"):
            model.fit(epochs=budget, callbacks=[StopAtTarget()], verbose=0, **arguments)
        measured = after()
    finally:
        ended.restore()
        model.history, model.stop_training = history, False
    reached = bool(curve) and curve[-1] >= target
    return ContinuedFit(len(curve), budget, tuple(curve), reached, measured, time.perf_counter() - start)


def _logs_of(run: TrainingRun) -> Callable[[dict], dict]:
    """The continued fit's logs as the run reads them: one output's, where the run is one output's."""
    if run.whole is None:
        return lambda logs: logs
    names = output_names(run.whole.model)
    return lambda logs: output_logs(logs, run.pipeline.output, names)
