"""Attach the checks to a fit the repository runs itself: one Keras callback.

    recorder = pipeline_checks.Recorder()
    model.fit(x, y, callbacks=[recorder], ...)
    recorder.assert_ok(data)

During fit the recorder keeps what a shared training run keeps (the recording callback of
`run/recording.py`, whose `FitRecord` it starts anew at each fit). `check(data)` turns the
last fit into the `TrainingRun` of a `Pipeline` built around the recorded model
(`recorded_run.py`) and runs on it every family that can judge a recorded fit: those whose
`@family` declaration does not need a fit of its own (`OWN_FIT`).

`Recorder` is a subclass of the installed Keras' `Callback`, created on first use (this
module's `__getattr__`), so that importing pipeline_checks imports no Keras.
"""

from __future__ import annotations

import functools
import warnings

from pipeline_checks.attach.recorded_run import (
    CheckSettings,
    NotApplicable,
    initial_loss_of,
    left_as_found,
    recorded_run,
)
from pipeline_checks.model import compat
from pipeline_checks.model.random_state import random_state_kept
from pipeline_checks.model.state import weight_values
from pipeline_checks.run.recording import FitRecord, recording_callback_class


def __getattr__(name: str):
    if name == "Recorder":
        return _recorder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _recorder_class():
    """The `Recorder` class: created once, on the recording callback's class."""

    class Recorder(recording_callback_class()):
        """A Keras callback that records one fit, then runs the checks on it.

        Example:
            >>> recorder = pipeline_checks.Recorder()
            >>> model.fit(x, y, epochs=15, batch_size=4, callbacks=[recorder])
            >>> recorder.assert_ok((images, labels, class_names), preprocess_train=lambda i: i / 255)

        Each fit the recorder is passed to starts a new recording; the checks judge the last one.
        """

        def __init__(self):
            super().__init__()
            self._fits = 0

        @property
        def fits(self) -> int:
            """How many fits this recorder has seen start."""
            return self._fits

        def on_train_begin(self, logs=None):
            self._fits += 1
            self.record = _record_at_start(self.model)
            super().on_train_begin(logs)

        def check(
            self,
            data,
            *,
            label_encoding: str | None = None,
            preprocess_train=None,
            preprocess_infer=None,
            batch_size: int | None = None,
            families=None,
            seed: int = 0,
            **options,
        ) -> list:
            """Run the checks that judge one recorded fit on the last fit; return their `CheckResult`s.

            Args:
                data: the raw data fit trained on, as `Pipeline(data=...)` takes it, e.g.
                    `(images, labels, class_names)` with uint8 images (N, H, W, C).
                label_encoding: "sparse" or "one_hot", as fit received the labels. Default:
                    read from the compiled loss (one-hot for categorical_crossentropy, and for
                    binary_crossentropy on several outputs), else sparse.
                preprocess_train: raw images -> the inputs fit received. Default: float32 pixels.
                preprocess_infer: raw images -> inputs for evaluate and predict. Default:
                    `preprocess_train`.
                batch_size: fit's batch size. Default: the images divided evenly over the
                    steps fit ran per epoch. Give it to have the data's size checked exactly.
                families: names of families that can judge a recorded fit: those that need no
                    fit of their own (agreement, frozen_layers, labels, overfit, numerics,
                    variables_change). Default: all of them.
                seed: seeds reading the data and the checks' own randomness.
                **options: family name -> keyword arguments of that check, e.g.
                    `overfit={"target_accuracy": 0.9}`, `agreement={"tolerance": 0.1}`; they
                    become the pipeline's `check_options`.

            Returns:
                One `CheckResult` per family, in the order of `pipeline_checks.checks.FAMILIES`.
            """
            settings = CheckSettings(label_encoding, preprocess_train, preprocess_infer, batch_size, seed, options)
            return _check(self._finished_fit(), data, families, settings)

        def assert_ok(self, data, **kwargs) -> list:
            """`check(data, **kwargs)`, raising `PipelineCheckFailure` with every failed result.

            Returns:
                The results, when all passed.
            """
            __tracebackhide__ = True
            results = self.check(data, **kwargs)
            failures = [r for r in results if not r.passed]
            if failures:
                from pipeline_checks.errors import PipelineCheckFailure

                name = self.record.model.name
                heading = f"{len(failures)} of {len(results)} checks failed on the recorded fit of {name!r}"
                raise PipelineCheckFailure("\n\n".join([heading + ":", *map(str, failures)]))
            return results

        def _finished_fit(self) -> FitRecord:
            if self.record is None:
                raise RuntimeError(
                    "Recorder.check needs a recorded fit: pass the recorder to fit first, "
                    "model.fit(x, y, callbacks=[recorder], ...); received: no fit recorded"
                )
            if not self.record.finished:
                raise RuntimeError(
                    "Recorder.check needs a finished fit: the last fit never reached on_train_end "
                    f"(it raised or was interrupted); received: fit {self._fits} unfinished"
                )
            if self._fits > 1:
                warnings.warn(
                    f"Recorder saw {self._fits} fits; the checks judge the last one, which started from the "
                    "weights the earlier fits left (pass a new Recorder to each fit to judge them apart)",
                    UserWarning,
                    stacklevel=3,
                )
            return self.record

    Recorder.__module__ = __name__  # pickled and shown as pipeline_checks.attach.recorder.Recorder
    Recorder.__qualname__ = "Recorder"
    return Recorder


def _record_at_start(model) -> FitRecord:
    """A new record of the fit about to start on `model`."""
    weights = tuple(model.weights)
    return FitRecord(
        model=model,
        weights=weights,
        trainable=frozenset(id(v) for v in model.trainable_weights),
        initial=weight_values(weights),
        start_state=_state_at_start(model),
    )


def _state_at_start(model):
    """Every variable of the model and its optimizer as fit found them, for `training.replay`;
    None where the optimizer builds only inside the first step (Keras 2): building it here
    would change the user's fit."""
    from pipeline_checks.model.state import VariableSnapshot

    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", getattr(optimizer, "_built", False)):
        return None
    return VariableSnapshot.of([*model.variables, *compat.optimizer_variables(optimizer)])


# --- checking the recorded fit -------------------------------------------------------------


def recorded_families() -> dict:
    """Every check that can judge a recorded fit, by family name, in FAMILIES order: those whose
    `@family` declaration needs no fit of its own."""
    from pipeline_checks.checks import all_checks
    from pipeline_checks.checks.family import family_of

    return {name: check for name, check in all_checks().items() if family_of(check).judges_a_recorded_fit}


def _checked_families(families, recorded: dict) -> tuple[str, ...]:
    """The families to run, in FAMILIES order; ValueError naming what is wrong."""
    runs = ", ".join(recorded)
    if families is None:
        return tuple(recorded)
    names = [families] if isinstance(families, str) else families
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"families must be check names among {runs}; received: families={families!r}")
    from pipeline_checks.checks import FAMILIES

    own_fit = [name for name in FAMILIES if name in names and name not in recorded]
    if own_fit:
        raise ValueError(
            f"{', '.join(sorted(own_fit))} cannot judge a recorded fit: determinism fits twice from one seed, "
            "preprocessing and save_load build and train the model themselves; run them on a Pipeline "
            f"(pipeline_checks.checks). A Recorder runs {runs}; received: families={families!r}"
        )
    unknown = sorted(set(names) - set(recorded))
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))} is no check; a Recorder runs {runs}; received: families={families!r}"
        )
    return tuple(name for name in recorded if name in names)


def _check(fit: FitRecord, data, families, settings: CheckSettings) -> list:
    from pipeline_checks.checks.family import INITIAL_LOSS, family_of
    from pipeline_checks.checks.validation import checked_seed
    from pipeline_checks.run.training import forget_shared_runs, share_run

    recorded = recorded_families()
    families = _checked_families(families, recorded)
    seed = checked_seed(settings.seed)
    _check_options(settings.options, families)
    _check_built_before_fit(fit)
    # Reading the data and the checks seed Python, NumPy and Keras: the user's generators, and
    # model, are given back as they were.
    with random_state_kept(), left_as_found(fit.model):
        pipeline, run = recorded_run(fit, data, settings, seed)
        if any(INITIAL_LOSS in family_of(recorded[name]).needs for name in families):
            run.initial_loss = initial_loss_of(run)
        share_run(run)
        try:
            return [_run_family(recorded, name, pipeline, seed) for name in families]
        finally:
            forget_shared_runs(pipeline)


def _check_built_before_fit(fit: FitRecord) -> None:
    """The weights before fit must be known: a model that creates them in its first step has none to record."""
    if not fit.weights and fit.model.weights:
        raise ValueError(
            f"the model {fit.model.name!r} had no weights when fit started: it created them in its first step "
            "(a subclassed model under Keras 2), so the weights before fit are unknown; build it before fit, "
            "e.g. model(x[:1]) or model.build(input_shape); "
            f"received: 0 weights at the start of fit, {len(fit.model.weights)} after"
        )


def _check_options(options: dict, families: tuple[str, ...]) -> None:
    """Options only for families that run; their form is checked by Pipeline(check_options=...)."""
    from pipeline_checks.checks import FAMILIES

    unknown = sorted(set(options) - set(FAMILIES))
    if unknown:
        raise TypeError(
            f"Recorder.check got unexpected keyword arguments {', '.join(unknown)}: besides its own arguments it "
            f"takes check options by family, e.g. overfit={{'target_accuracy': 0.9}}, for {', '.join(families)}; "
            f"received: {', '.join(f'{name}={options[name]!r}' for name in unknown)}"
        )
    idle = sorted(set(options) - set(families))
    if idle:
        raise ValueError(
            f"options given for {', '.join(idle)}, which this check does not run; it runs {', '.join(families)}; "
            f"received: {', '.join(f'{name}={options[name]!r}' for name in idle)}"
        )


def _run_family(recorded: dict, name: str, pipeline, seed: int):
    """One family's result on the recorded run; its options come from `pipeline.check_options`."""
    from pipeline_checks.errors import PipelineRunError
    from pipeline_checks.results.verdict import Finding, verdict

    try:
        return recorded[name](pipeline, seed)
    except PipelineRunError as error:
        if not isinstance(error.__cause__, NotApplicable):
            raise
        # CheckResult has no "skipped": a check that could not run is reported as not passed, saying why.
        cannot_run = Finding(
            f"cannot run on the recorded fit: {error.__cause__}",
            detail=f"{name} needs the model as it was before fit: the Recorder rebuilds it with "
            "keras.models.clone_model at the recorded initial weights, compiled as the model is, and that failed",
            fix="give the model get_config() (and from_config) so that it can be cloned, or leave the family out: "
            f"families={[f for f in recorded if f != name]!r}",
        )
        return verdict(name, pipeline, [cannot_run], "", not_applicable=True)
