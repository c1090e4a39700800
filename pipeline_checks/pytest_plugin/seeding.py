"""Which seed a test starts from, and the hook pytest-randomly calls.

The checks (`pc_check`, `pc_baseline`, the built-in suite) run from --pc-seed (or its marker),
else 0, whatever pytest-randomly does: their training run is shared by a pipeline's tests and
recorded in its baseline, so a seed drawn per test would retrain it for every test and judge
other runs than the baseline's. Other tests that use pipeline-checks fixtures (`pc_seed`) start
from --pc-seed; with it unset they follow pytest-randomly's seed when that plugin is active, else 0.
pytest-randomly calls every `pytest_randomly.random_seeder` entry point before each
test phase; we reseed Keras there too, with the running test's own seed, so the
setup, call and teardown of one test agree on it.

Only a test's start (the `pc_seed` fixture) seeds in full, as `keras.utils.set_random_seed`
does; reseeds within a test, and the start of a `pc_check` test (the checks seed what they
train themselves), keep TensorFlow's compiled functions (`compat.set_random_seed(...,
keep_compiled=True)`): a full seed drops every traced step's kernels, and instantiating a Keras
application's training step again costs seconds.
"""

from __future__ import annotations

import sys

DEFAULT_SEED = 0
_randomly_seed: int | None = None
_active_seed: int | None = None


def reseed_from_pytest_randomly(seed: int) -> None:
    """Entry point for pytest-randomly; reseeds Keras only if something already imported it."""
    global _randomly_seed
    _randomly_seed = seed % 2**32  # NumPy's legacy seeding takes 32 bits.
    if "keras" in sys.modules or "tf_keras" in sys.modules:
        from pipeline_checks.model import compat

        compat.set_random_seed(_randomly_seed if _active_seed is None else _active_seed, keep_compiled=True)


def start_session() -> None:
    """Forget a previous session's pytest-randomly seed: pytest runs in one process (pytester's
    in-process runs, a notebook) must not inherit it when pytest-randomly is off in this one."""
    global _randomly_seed, _active_seed
    _randomly_seed = _active_seed = None


def start_test(configured: int | None, keep_compiled: bool = False) -> int:
    """Seed Python, NumPy and Keras for one test and return the seed used.

    `keep_compiled`: as `compat.set_random_seed`'s, for tests whose checks seed themselves.
    """
    global _active_seed
    from pipeline_checks.model import compat

    if configured is not None:
        seed = configured
    elif _randomly_seed is not None:
        seed = _randomly_seed
    else:
        seed = DEFAULT_SEED
    _active_seed = seed
    compat.set_random_seed(seed, keep_compiled=keep_compiled)
    return seed


def start_check_test(configured: int | None) -> int:
    """Seed for a test that runs checks, and return the seed: `configured`, else 0, never
    pytest-randomly's. Seeds keeping TensorFlow's compiled functions (the checks seed what they
    train themselves)."""
    global _active_seed
    from pipeline_checks.model import compat

    _active_seed = DEFAULT_SEED if configured is None else configured
    compat.set_random_seed(_active_seed, keep_compiled=True)
    return _active_seed


def end_test() -> None:
    global _active_seed
    _active_seed = None
