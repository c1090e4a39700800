"""What every check family declares once: its name, what it needs from a fit, and its options.

A family is a function `check_<name>(pipeline, seed=0, **options) -> CheckResult` decorated
with `@family(name, needs)`. The decorator checks `pipeline` and `seed` and resolves each
option the same way for every caller (a direct call, `pc_check`, the console script, a
`Recorder`, the baseline fingerprint, the detection matrix):

    the argument  >  [tool.pipeline_checks.pipeline.NAME] (passed as an argument by the plugin)
                  >  Pipeline(check_options={name: {...}})  >  the check's default

A `Recorder` reads `needs` to know which families can judge a fit it recorded.
"""

from __future__ import annotations

import functools
import inspect
import sysconfig
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_checks.checks.validation import checked_pipeline, checked_seed
from pipeline_checks.errors import PipelineCheckFailure, PipelineRunError
from pipeline_checks.pipelines.output_views import has_several_outputs, output_views
from pipeline_checks.results.check_result import CheckResult

PACKAGE = Path(__file__).resolve().parents[1]  # pipeline_checks/
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
MODEL_PACKAGES = frozenset({"keras", "tf_keras", "tensorflow", "jax", "torch"})  # what runs a model

# What a family needs from training; a family names every one it needs.
SHARED_RUN = "shared_run"  # judges the one training run all checks share (or a recorded fit)
INITIAL_LOSS = "initial_loss"  # reads the loss of a training-mode pass before the first step
OWN_FIT = "own_fit"  # builds and trains the model itself, so it cannot judge a recorded fit
NEEDS = (SHARED_RUN, INITIAL_LOSS, OWN_FIT)

OURS = ("pipeline", "seed")  # the arguments every check takes; the others are its options


@dataclass(frozen=True)
class Family:
    """A check family as the runners see it.

    Attributes:
        name: e.g. "labels"; the check is `check_<name>`.
        needs: among SHARED_RUN, INITIAL_LOSS and OWN_FIT.
        options: the keyword arguments it takes besides `pipeline` and `seed`, with their defaults.
        per_output: it judges targets, so a model with several outputs is judged output by output
            (`each_output`), each with its own targets, loss and metrics.
    """

    name: str
    needs: frozenset[str]
    options: dict[str, Any]
    per_output: bool = False

    @property
    def judges_a_recorded_fit(self) -> bool:
        return OWN_FIT not in self.needs


def family(name: str, *needs: str, per_output: bool = False) -> Callable:
    """Declare `check_<name>` a family that needs `needs` (default: the shared run); `per_output`: see `Family`."""
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"family {name!r} needs {unknown}; a family needs among {', '.join(NEEDS)}")

    def declare(check: Callable) -> Callable:
        signature = inspect.signature(check)
        options = {p.name: p.default for p in signature.parameters.values() if p.name not in OURS}
        declared = Family(name, frozenset(needs or (SHARED_RUN,)), options, per_output)

        @functools.wraps(check)
        def run(pipeline, *args, **kwargs):
            __tracebackhide__ = True
            pipeline = checked_pipeline(pipeline)
            bound = signature.bind(pipeline, *args, **kwargs)  # TypeError names an unknown keyword
            seed = checked_seed(bound.arguments.get("seed", 0))
            given = {key: value for key, value in bound.arguments.items() if key not in OURS}
            from_pipeline = {k: v for k, v in pipeline_options(declared, pipeline).items() if k not in given}
            try:
                if per_output and has_several_outputs(pipeline):
                    return each_output(check, name, pipeline, seed, {**given, **from_pipeline})
                return check(pipeline, seed, **given, **from_pipeline)
            except (PipelineCheckFailure, PipelineRunError):
                raise
            except Exception as error:
                if raised_by_the_model(error):  # the user's model or Keras beneath it
                    step = f"the model in check_{name}'s own passes"
                    raise PipelineRunError(f"Pipeline {pipeline.name!r}: {step} raised {_named(error)}") from error
                refused = _refused_option(error, from_pipeline) if isinstance(error, ValueError) else None
                if refused is None:
                    raise
                raise ValueError(f"Pipeline {pipeline.name!r}: check_options[{name!r}]: {error}") from None

        run.family = declared
        return run

    return declare


def each_output(check: Callable, name: str, pipeline, seed: int, options: dict[str, Any]) -> CheckResult:
    """`check` on each output of a model with several, as one result: failed where any output fails,
    each output's summary and details under its name."""
    from pipeline_checks.run.builds import fresh_build

    views = output_views(pipeline, fresh_build(pipeline, seed))
    results = [check(view, seed, **options) for view in views]
    named = [(view.output, result) for view, result in zip(views, results)]
    failing = [output for output, result in named if not result.passed]
    judged = f"{len(named)} outputs judged apart"
    lead = f"{judged}; failed on {', '.join(map(repr, failing))}" if failing else judged
    details = [f"output {output!r}:\n{textwrap.indent(result.details, '  ')}" for output, result in named]
    details = [text for text, (_, result) in zip(details, named) if result.details]
    return CheckResult(
        name,
        not failing,
        "; ".join([lead, *(f"output {output!r}: {result.summary}" for output, result in named)]),
        "\n".join(details),
        pipeline.name,
        {"outputs": {output: result.numbers for output, result in named}},
        "; ".join(f"{output}: {result.headline or result.summary}" for output, result in named),
        any(result.error for _, result in named),
    )


def family_of(check: Callable) -> Family:
    """The declaration of a check function; TypeError for a function that is no family."""
    declared = getattr(check, "family", None)
    if not isinstance(declared, Family):
        raise TypeError(f"{getattr(check, '__name__', check)!r} is not a check family (no @family declaration)")
    return declared


def pipeline_options(declared: Family, pipeline) -> dict[str, Any]:
    """`pipeline.check_options[name]`, its keywords checked against the family's options."""
    options = dict(pipeline.check_options.get(declared.name, {}))
    unknown = sorted(set(options) - set(declared.options))
    if unknown:
        takes = f"it takes {', '.join(declared.options)}" if declared.options else "it takes no options"
        raise ValueError(
            f"Pipeline {pipeline.name!r}: check_options[{declared.name!r}] sets {', '.join(unknown)}, which "
            f"check_{declared.name} does not take; {takes}; received: check_options[{declared.name!r}]={options!r}"
        )
    return options


def resolved_options(check: Callable, pipeline, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every option of `check` as a run on `pipeline` with the arguments `given` uses it."""
    declared = family_of(check)
    return {**declared.options, **pipeline_options(declared, pipeline), **(given or {})}


def _refused_option(error: ValueError, from_pipeline: dict[str, Any]) -> str | None:
    """The option from check_options that `error` refuses, by the message shape of `_validation`
    ("NAME must be ...; received: NAME=VALUE"); None where the error is about something else."""
    text = str(error)
    return next((key for key in from_pipeline if text.startswith(f"{key} must be")), None)


def raised_by_the_model(error: BaseException) -> bool:
    """Whether the user's model raised `error` while a check ran it: its traceback passes through
    Keras or a backend, or ends in the user's own code (outside installed packages); not where it
    ends in pipeline_checks (a refused value, or a bug of the checks)."""
    files = [Path(frame.filename) for frame in traceback.extract_tb(error.__traceback__)]
    if not files or files[-1].resolve().is_relative_to(PACKAGE):
        return False
    through_keras = any(MODEL_PACKAGES.intersection(file.parts) for file in files)
    installed = {"site-packages", "dist-packages"}.intersection(files[-1].parts)
    return through_keras or not (installed or files[-1].resolve().is_relative_to(STDLIB))


def _named(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
