"""The project's own test configuration: hypothesis profiles, pytester, and the markers `gpu` and `slow`.

The plugin registers only namespaced markers; `gpu` and `slow` are this project's own.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

# Quiet TensorFlow's C++ start-up logging in our own runs (users' runs are theirs).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["pytester"]

# Tracing a Keras model takes seconds, so no example deadline anywhere.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("dev", max_examples=10, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True, print_blob=True, suppress_health_check=_SLOW_OK
)
settings.register_profile("thorough", max_examples=200, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a GPU visible to the Keras backend; skipped otherwise.")
    config.addinivalue_line("markers", "slow: takes long (minutes); deselect with -m 'not slow'.")


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return  # finding devices imports Keras: only when a test asks
    from pipeline_checks.model import compat, devices

    if devices.gpu_available():
        return
    skip = pytest.mark.skip(
        reason=f"needs a GPU; the {compat.backend()} backend sees only {', '.join(devices.devices())}"
    )
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _frameworks_imported_before_pytester(request):
    """pytester unloads modules its in-process runs import, and NumPy cannot be loaded twice.

    Importing Keras (and so NumPy and the backend) before pytester takes its snapshot
    keeps them loaded across in-process runs.
    """
    if "pytester" in request.fixturenames:
        from pipeline_checks.model import compat

        compat.keras()


# Set in each worker when this suite runs under `pytest -n 2`; a pytester run is a session of its own.
XDIST_WORKER_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


@pytest.fixture(autouse=True)
def _pytester_runs_are_not_xdist_workers(request, monkeypatch):
    """A run that pytester starts from an xdist worker inherits the worker's environment.

    pytest-benchmark then disables itself and our own xdist tests see a worker where they ran serially.
    """
    if "pytester" in request.fixturenames:
        for name in XDIST_WORKER_VARIABLES:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def first_report_run():
    """The first report's ResNet50 after fit (~40-60 s on 2 cores), trained once for every test that reads it.

    Tests may measure, recalibrate (restored) or save it; none may train it further.
    """
    from pipeline_checks.scenarios.bug_reports import first_report

    # Until fit says 100%: 4 epochs on Keras 3, 7-8 on Keras 2 (other initial weights).
    return first_report(seed=0)
