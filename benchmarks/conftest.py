"""Shared pieces of the benchmarks: a precision policy that is put back after the test."""

import pytest


@pytest.fixture
def precision_policy():
    """Set Keras' global dtype policy for one test, e.g. precision_policy("mixed_bfloat16")."""
    from pipeline_checks.model import compat

    mixed_precision = compat.keras().mixed_precision
    previous = mixed_precision.global_policy()
    yield mixed_precision.set_global_policy
    mixed_precision.set_global_policy(previous)
