"""The detection matrix: every check on every broken pipeline and its correct twins.

Each broken pipeline must fail exactly the checks listed in its `Case` (with the expected
cause in each message) and pass every other one; each correct twin must pass them all.
Where Keras behaves otherwise on a backend, the row says so with `Case.on(backend, why, ...)`,
e.g. fit raising (every check that trains raises PipelineRunError, the others pass).
The rows live in tests/broken_pipelines/, one module per area; extend them whenever a
check learns a new bug.
"""

import re
from pathlib import Path

import pytest
from broken_pipelines import (
    agreement_precision,
    capacity,
    data,
    dataset_code,
    in_model_preprocessing,
    inference,
    labels_heads,
    program_faults,
    regression,
    regression_agreement,
    regression_labels,
    regression_training,
    reproducibility,
    segmentation,
    several_outputs,
    stages,
    tabular,
    training,
)

from pipeline_checks.checks import FAMILIES, all_checks
from pipeline_checks.errors import PipelineRunError
from pipeline_checks.model import compat
from pipeline_checks.model.layers import find_batchnorm, find_training_only_layers, walk_layers
from pipeline_checks.model.random_layers import random_layers_reached_by
from pipeline_checks.run.training import forget_shared_runs

CASES = [
    *inference.CASES,
    *training.CASES,
    *data.CASES,
    *reproducibility.CASES,
    *agreement_precision.CASES,
    *capacity.CASES,
    *in_model_preprocessing.CASES,
    *labels_heads.CASES,
    *dataset_code.CASES,
    *stages.CASES,
    *program_faults.CASES,
    *tabular.CASES,
    *regression.CASES,
    *regression_labels.CASES,
    *regression_training.CASES,
    *regression_agreement.CASES,
    *segmentation.CASES,
    *several_outputs.CASES,
]


def run_every_check(pipeline) -> dict:
    """Check name -> its CheckResult, or the PipelineRunError it raised (the pipeline's own code failed)."""
    results = {}
    try:
        for name, check in all_checks().items():
            try:
                results[name] = check(pipeline)
            except PipelineRunError as error:
                results[name] = error
        return results
    finally:
        forget_shared_runs(pipeline)
        compat.keras().backend.clear_session()


def verdicts(results) -> str:
    return "\n".join(f"  {name}: {_verdict(r)}" for name, r in results.items())


def _verdict(result) -> str:
    if isinstance(result, PipelineRunError):
        return f"RAISED: {result}"
    return f"{'passed' if result.passed else 'FAILED'}: {result.summary}"


def test_every_row_has_a_unique_name():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), ids


def test_every_check_catches_at_least_one_broken_pipeline():
    caught = set().union(*(case.caught_by for case in CASES))
    assert set(all_checks()) <= caught, f"no broken pipeline for {sorted(set(all_checks()) - caught)}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_pipeline_fails_exactly_the_checks_that_catch_its_bug(case):
    try:
        pipeline = case.pipeline()
    except ImportError as error:
        pytest.skip(f"{case.id} needs {error.name}, which is not installed")
    results = run_every_check(pipeline)
    raised = {name: error for name, error in results.items() if isinstance(error, PipelineRunError)}
    missing = [error for error in raised.values() if isinstance(error.__cause__, ImportError)]
    if missing and not case.raises:  # e.g. a folder loader, which needs tf.data, on Keras 3 with JAX or torch
        pytest.skip(f"{case.id} needs a module that is not installed: {missing[0].__cause__}")
    if case.raises:
        assert raised, f"{case.bug}: expected fit to raise ({case.why})\n{verdicts(results)}"
        for name, error in raised.items():
            assert re.search(case.raises, str(error)), f"{name} raised, but not {case.raises!r}: {error}"
    else:
        assert not raised, f"{case.bug}: the pipeline's own code raised\n{verdicts(results)}"
    failing = {name for name, result in results.items() if name not in raised and not result.passed}
    assert failing == case.caught_by, f"{case.bug}: expected failures {sorted(case.caught_by)}\n{verdicts(results)}"
    for name, cause in case.causes.items():
        assert re.search(cause, str(results[name])), f"{name} does not name the cause {cause!r}:\n{results[name]}"
    failures = {name: _without_fixes(str(result)) for name, result in results.items() if name in failing}
    absent = mechanisms_absent_from(pipeline, failures)
    assert not absent, f"{case.bug}: messages name mechanisms its model lacks: {absent}\n{verdicts(results)}"


# A failure message may name only a mechanism the pipeline has: a mechanism's words, and what shows it
# in a fresh build of the model (or, for random layers, in the training path's own code).
MECHANISMS = {
    "BatchNormalization": (re.compile(r"BatchNorm|\bBN\b"), lambda model, pipeline: normalizes_by_batch(model)),
    "a training-only layer (Dropout, noise, augmentation)": (
        re.compile(r"\b(Dropout|GaussianNoise|RandomFlip|RandomRotation)\b"),
        lambda model, pipeline: (
            find_training_only_layers(model)
            or random_layers_reached_by(pipeline.train_dataset or pipeline.preprocess_train)
        ),
    ),
}


def normalizes_by_batch(model) -> bool:
    """Keras BatchNormalization layers, or a layer of one's own that keeps moving statistics (a port)."""
    return bool(find_batchnorm(model)) or any(hasattr(f.layer, "moving_mean") for f in walk_layers(model))


def _without_fixes(message: str) -> str:
    """A failure message without its "Fix:" lines: a fix may advise a mechanism the model lacks."""
    return "\n".join(line for line in message.splitlines() if not line.lstrip().startswith("Fix:"))


def mechanisms_absent_from(pipeline, messages: dict) -> dict:
    """Check name -> the mechanisms its failure message names that the pipeline lacks."""
    if not messages:
        return {}
    model = pipeline.fresh_model()
    lacking = [name for name, (_, found_in) in MECHANISMS.items() if not found_in(model, pipeline)]
    absent = {}
    for check, message in messages.items():
        named = [name for name in lacking if MECHANISMS[name][0].search(message)]
        if named:
            absent[check] = named
    return absent


def documented_rows() -> dict[str, frozenset]:
    """docs/detection-matrix.md's table: row name -> the checks it marks with an x (its columns follow FAMILIES)."""
    text = (Path(__file__).parents[1] / "docs" / "detection-matrix.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.split("\n## ")[0].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 + len(FAMILIES) and cells[0].startswith("`"):
            marked = (name for name, cell in zip(FAMILIES, cells[2:]) if cell == "**x**")
            rows[cells[0].strip("`")] = frozenset(marked)
    return rows


def test_the_documented_matrix_is_the_tested_one():
    """Every row is in the docs' table, marking the checks it fails by default, and the count is right."""
    if not (compat.is_keras3() and compat.backend() == "tensorflow"):
        pytest.skip("the table is the matrix of Keras 3 on TensorFlow, where every row runs")
    documented = documented_rows()
    tested = {case.id: frozenset(case.expected) for case in CASES}
    assert documented == tested, {
        "undocumented": sorted(set(tested) - set(documented)),
        "not tested": sorted(set(documented) - set(tested)),
        "marked otherwise": sorted(name for name in set(tested) & set(documented) if tested[name] != documented[name]),
    }
    text = (Path(__file__).parents[1] / "docs" / "detection-matrix.md").read_text(encoding="utf-8")
    assert f"The matrix has\n{len(CASES)} rows." in text or f"The matrix has {len(CASES)} rows." in text
