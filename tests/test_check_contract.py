"""One contract for every check family, from `all_checks()`: a new family is held to it unedited.

Each family refuses a bad pipeline, seed, keyword or check_options key before anything trains;
leaves the pipeline as it found it; returns a CheckResult named after itself that survives
`to_dict`/`from_dict`; and declares its needs and its options (those of its signature).
"""

import copy
import dataclasses
import inspect
import json
import re

import numpy as np
import pytest
from helpers.pipelines import DATA, compiled_cnn, small_pipeline

from pipeline_checks import Pipeline
from pipeline_checks.checks import FAMILIES, CheckResult, all_checks
from pipeline_checks.checks.family import NEEDS, OURS, family_of
from pipeline_checks.run.training import forget_shared_runs

CHECKS = all_checks()
NOT_A_PIPELINE = "checks take a pipeline_checks.Pipeline (name, build_model, data, ...); received: "


def test_every_family_is_a_check():
    assert tuple(CHECKS) == FAMILIES
    assert all(check.__name__ == f"check_{name}" for name, check in CHECKS.items())


# --- bad arguments: refused before anything is built, read or trained ---------------------------


class Untouched:
    """A pipeline that counts its builds and data reads: a refusal must come before either."""

    def __init__(self, check_options=None):
        self.calls = []
        self.pipeline = Pipeline(
            "contract",
            build_model=lambda: self.calls.append("build_model") or compiled_cnn(),
            data=lambda: self.calls.append("data") or DATA,
            check_options=check_options or {},
        )


BAD_PIPELINES = {
    "pipeline-str": ("small-cnn", NOT_A_PIPELINE + "pipeline='small-cnn' of type str"),
    "pipeline-none": (None, NOT_A_PIPELINE + "pipeline=None of type NoneType"),
}
BAD_SEEDS = [-1, 1.5, True, 1.0, "0", None]


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("given, message", BAD_PIPELINES.values(), ids=BAD_PIPELINES)
def test_not_a_pipeline_is_refused(name, given, message):
    with pytest.raises(TypeError) as raised:
        CHECKS[name](given)
    assert str(raised.value) == message


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_a_seed_that_is_no_non_negative_integer_is_refused(name, seed):
    untouched = Untouched()
    with pytest.raises(ValueError) as raised:
        CHECKS[name](untouched.pipeline, seed=seed)
    assert str(raised.value) == f"seed must be a non-negative integer; received: seed={seed!r}"
    with pytest.raises(ValueError, match=re.escape(f"received: seed={seed!r}")):
        CHECKS[name](untouched.pipeline, seed)  # given by position too
    assert untouched.calls == []


@pytest.mark.parametrize("name", CHECKS)
def test_an_unknown_keyword_is_refused_by_name(name):
    untouched = Untouched()
    with pytest.raises(TypeError, match="toleranse"):
        CHECKS[name](untouched.pipeline, toleranse=0.1)
    assert untouched.calls == []


@pytest.mark.parametrize("name", CHECKS)
def test_an_unknown_check_options_key_is_refused_naming_pipeline_family_and_what_it_takes(name):
    options = family_of(CHECKS[name]).options
    untouched = Untouched({name: {"toleranse": 0.1}})
    takes = f"it takes {', '.join(options)}" if options else "it takes no options"
    with pytest.raises(ValueError) as raised:
        CHECKS[name](untouched.pipeline)
    assert str(raised.value) == (
        f"Pipeline 'contract': check_options[{name!r}] sets toleranse, which check_{name} does not take; "
        f"{takes}; received: check_options[{name!r}]={{'toleranse': 0.1}}"
    )
    assert untouched.calls == []


# --- one run per family on one shared training run ----------------------------------------------


def fields_of(pipeline: Pipeline) -> dict:
    """Every field of the pipeline, copied deep (functions stay themselves) to compare after a check."""
    return {f.name: copy.deepcopy(getattr(pipeline, f.name)) for f in dataclasses.fields(pipeline)}


def same(a, b) -> bool:
    """Equal values: arrays element by element, dataclasses field by field, NaN equal to NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and same(dataclasses.asdict(a), dataclasses.asdict(b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return a == b


@pytest.fixture(scope="module")
def runs():
    """The tiny pipeline, its fields before any check, and `result(name)`: each family run once on
    it from seed 0, all sharing one training run."""
    pipeline = small_pipeline(
        "contract-run",
        data=dataclasses.replace(DATA, images=DATA.images.copy(), labels=DATA.labels.copy()),
        fit_kwargs={"epochs": 3, "batch_size": 4, "shuffle": True},
        check_options={"overfit": {"tolerance": 0.05}},
    )
    before = fields_of(pipeline)
    results = {}
    yield pipeline, before, lambda name: results.setdefault(name, CHECKS[name](pipeline, 0))
    forget_shared_runs(pipeline)


@pytest.mark.parametrize("name", CHECKS)
def test_a_check_leaves_the_pipeline_as_it_found_it(runs, name):
    pipeline, before, result = runs
    result(name)
    after = fields_of(pipeline)
    changed = [field for field in before if not same(before[field], after[field])]
    assert changed == [], f"check_{name} changed the pipeline's {', '.join(changed)}"


@pytest.mark.parametrize("name", CHECKS)
def test_a_check_returns_a_result_named_after_its_family_that_survives_to_dict(runs, name):
    pipeline, _, result = runs
    checked = result(name)
    assert isinstance(checked, CheckResult)
    assert (checked.name, checked.pipeline, checked.error) == (name, pipeline.name, False)
    assert checked.summary and isinstance(checked.passed, bool)
    data = checked.to_dict()
    again = CheckResult.from_dict(json.loads(json.dumps(data)))  # plain data, as xdist workers send it
    assert same(again.to_dict(), data)
    assert same(dataclasses.replace(again, numbers={}), dataclasses.replace(checked, numbers={}))
    assert again.numbers.keys() == checked.numbers.keys()
    assert str(again) == str(checked)


# --- declarations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHECKS)
def test_a_family_declares_its_needs_and_the_options_of_its_signature(name):
    check = CHECKS[name]
    declared = family_of(check)
    assert declared.name == name
    assert declared.needs and declared.needs <= set(NEEDS)
    parameters = inspect.signature(check).parameters
    assert list(parameters)[: len(OURS)] == list(OURS) and parameters["seed"].default == 0
    assert declared.options == {p.name: p.default for p in parameters.values() if p.name not in OURS}
    assert all(p.default is not inspect.Parameter.empty for p in parameters.values() if p.name != "pipeline")
