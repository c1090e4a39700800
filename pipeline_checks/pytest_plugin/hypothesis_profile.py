"""A hypothesis settings profile for properties that train a pipeline, registered on import.

Load it in one line (a conftest.py, or the top of a test module):

    settings.load_profile("pipeline-checks")

or pass `--hypothesis-profile=pipeline-checks` to pytest. Each example builds and trains a
model, so: no deadline (tracing takes seconds), 10 examples (20 with `HYPOTHESIS_EXAMPLES`),
the too-slow and function-scoped-fixture health checks off (fixtures like `tiny_images` are
cheap factories), and derandomized when `CI` is set, so a pull request's run is reproducible.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = "pipeline-checks"
EXAMPLES = 10


def profile_settings(environ=os.environ) -> settings:
    """The profile's settings for an environment (`CI` set: derandomized, and the blob printed)."""
    ci = bool(environ.get("CI"))
    examples = environ.get("HYPOTHESIS_EXAMPLES", "")
    return settings(
        max_examples=int(examples) if examples.isdigit() and int(examples) > 0 else EXAMPLES,
        deadline=None,
        derandomize=ci,
        print_blob=ci,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


settings.register_profile(PROFILE, profile_settings())
