"""Fixtures the check tests share."""

import pytest

from pipeline_checks.training_run import forget_shared_runs


@pytest.fixture(scope="module")
def pipeline_of():
    """`pipeline_of(factory)`: one pipeline per factory for the whole module, so its training run is shared."""
    made = {}
    yield lambda factory: made.setdefault(factory, factory())
    for pipeline in made.values():
        forget_shared_runs(pipeline)
