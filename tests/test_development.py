"""docs/development.md's worked example of a tenth family, run as written."""

import functools
import types
from pathlib import Path

import pytest
from helpers.pipelines import compiled_cnn, small_pipeline

from pipeline_checks.checks.family import family_of
from pipeline_checks.run.training import forget_shared_runs

QUICK = {"epochs": 3, "batch_size": 4}
PAGE = Path(__file__).resolve().parents[1] / "docs" / "development.md"


def example_code() -> str:
    """The first python block under the worked example's heading."""
    section = PAGE.read_text().split("## Adding a check family: a worked example", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def check_loss_falls():
    module = types.ModuleType("loss_falls")
    exec(compile(example_code(), str(PAGE), "exec"), module.__dict__)
    return module.check_loss_falls


@pytest.fixture
def tiny():
    pipelines = []

    def make(name, **changes):
        pipelines.append(small_pipeline(name, fit_kwargs=QUICK, **changes))
        return pipelines[-1]

    yield make
    for pipeline in pipelines:
        forget_shared_runs(pipeline)


def test_the_example_family_is_declared_with_its_option(check_loss_falls):
    declared = family_of(check_loss_falls)
    assert (declared.name, declared.options, declared.judges_a_recorded_fit) == (
        "loss_falls",
        {"least_fall": 0.1},
        True,
    )


def test_the_example_passes_the_correct_pipeline_and_fails_its_broken_twin(check_loss_falls, tiny):
    good = check_loss_falls(tiny("loss-falls"))
    assert good.passed, good
    assert good.numbers["last_loss"] < good.numbers["first_loss"]
    frozen = check_loss_falls(tiny("loss-lr-zero", build_model=functools.partial(compiled_cnn, learning_rate=0.0)))
    assert not frozen.passed
    assert frozen.summary.startswith("the loss went from")
    assert "Fix: check the learning rate" in frozen.details


def test_the_example_reads_its_option_from_check_options_and_checks_it(check_loss_falls, tiny, monkeypatch):
    import pipeline_checks.checks

    monkeypatch.setattr(pipeline_checks.checks, "FAMILIES", (*pipeline_checks.checks.FAMILIES, "loss_falls"))
    demanding = check_loss_falls(tiny("loss-falls", check_options={"loss_falls": {"least_fall": 0.99}}))
    assert not demanding.passed and "less than 99%" in demanding.details
    with pytest.raises(ValueError, match=r"check_options\['loss_falls'\]: least_fall must be a share in \[0, 1\)"):
        check_loss_falls(tiny("loss-falls", check_options={"loss_falls": {"least_fall": 1}}))
