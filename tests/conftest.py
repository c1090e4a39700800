"""Fixtures the check tests share."""

import pytest

from pipeline_checks.run.training import forget_shared_runs, shared_run


@pytest.fixture(scope="module")
def pipeline_of():
    """`pipeline_of(factory)`: one pipeline per factory for the whole module, so its training run is shared."""
    made = {}
    yield lambda factory: made.setdefault(factory, factory())
    for pipeline in made.values():
        forget_shared_runs(pipeline)


@pytest.fixture
def forgotten():
    """`forgotten(pipeline)`: the pipeline, its shared runs and builds dropped after the test."""
    made = []
    yield lambda pipeline: made.append(pipeline) or pipeline
    for pipeline in made:
        forget_shared_runs(pipeline)


@pytest.fixture(scope="module")
def check_once():
    """`check_once(check, factory, fingerprint, seed)`: (pipeline, fingerprint of its shared run
    before the check, the check's result), each computed once per module."""
    cache = {}

    def run(check, factory, fingerprint, seed):
        if (check, factory) not in cache:
            pipeline = factory()
            before = fingerprint(shared_run(pipeline, seed))
            cache[check, factory] = (pipeline, before, check(pipeline, seed))
        return cache[check, factory]

    yield run
    for pipeline, _, _ in cache.values():
        forget_shared_runs(pipeline)
