"""Every check family as a test, parametrized over the declared pipelines.

Collected by `pytest --pipeline-checks`; the `pipeline` fixture gives each declared
pipeline in turn (or the built-in ones), and `pc_check` runs a check on it, records the
result for the terminal summary and the report, and fails the test when the check fails.
There is one test per name in `pipeline_checks.checks.FAMILIES`, `test_<family>`, in that
order. All checks of one pipeline share one training run; test_baseline comes last, as its
fingerprint includes the other checks' numbers.
"""

from pipeline_checks.checks import FAMILIES


def _family_test(family: str):
    """`test_<family>`: `pc_check(family, pipeline)`."""

    def test(pipeline, pc_check):
        pc_check(family, pipeline)

    test.__name__ = test.__qualname__ = f"test_{family}"
    return test


# Defined in FAMILIES order, which is the order pytest collects them in.
globals().update({f"test_{family}": _family_test(family) for family in FAMILIES})


def test_baseline(pipeline, pc_baseline):
    pc_baseline(pipeline)
