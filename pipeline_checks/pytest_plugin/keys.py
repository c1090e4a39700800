"""What the plugin's hooks and its fixtures share: stash keys, marker names and report attributes."""

from __future__ import annotations

import contextlib

import pytest

from pipeline_checks.pytest_plugin.settings import Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
DEVICES_KEY = pytest.StashKey[set]()
PIPELINES_KEY = pytest.StashKey[list]()
RESULTS_KEY = pytest.StashKey[list]()  # (order, CheckResult) pairs, from this process or from workers
ORDER_KEY = pytest.StashKey[dict]()  # nodeid -> position in the session's items
EMPTY_SHARD_KEY = pytest.StashKey[bool]()  # --pc-shard left this run nothing
ITEM_RESULTS_KEY = pytest.StashKey[list]()  # the results one test recorded, as plain data
# Open while a pipeline's tests run: what existed before them is left out of garbage collections.
OLDER_OBJECTS_KEY = pytest.StashKey[contextlib.ExitStack]()
CHECK_NUMBERS_KEY = pytest.StashKey[dict]()  # (pipeline, seed) -> family -> numbers, for the baseline's fingerprint
# The attribute of a test report that carries its check results (plain data: it crosses from
# pytest-xdist workers to the controller with the report).
REPORT_ATTRIBUTE = "pipeline_checks_results"
GPU_MARKER = "pipeline_checks_gpu"
# Framework modules whose DeprecationWarnings, raised inside a check's own Keras calls, are
# not findings about the pipeline (a small run raised ~1,100 of them into the warning summary).
FRAMEWORK_MODULES = (
    r"(keras|tf_keras|tensorflow|jax|jaxlib|torch|numpy|h5py|absl|google\.protobuf|ml_dtypes|optree|flatbuffers)"
    r"(\..*)?$"
)
MARKER = "pipeline_checks"
