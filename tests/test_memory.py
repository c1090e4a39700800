"""Memory the checks freed goes back to the operating system (run/memory.py)."""

import gc
import json
import subprocess
import sys
import weakref

import numpy as np
import pytest

from pipeline_checks.model import compat
from pipeline_checks.run.memory import (
    _CUSTOM_GRADIENT,
    _graph_of,
    _malloc_trim,
    older_objects_left_out,
    release_freed_memory,
)

# Run in a fresh process, whose heap starts as glibc leaves it. A freed 8 MB mapping raises the
# mmap threshold: later arrays of that size come from the heap, and with smaller objects still
# alive above them (as a model's other state is), their pages stay with the process when they
# are freed, as a run's snapshots do.
FREED_SNAPSHOTS = """
import json, numpy as np
from pipeline_checks.run.memory import release_freed_memory

def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

np.ones(2_000_000, np.float32)
snapshots, alive = [], []
for _ in range(40):  # 320 MB
    snapshots.append(np.ones(2_000_000, np.float32))
    alive.append(np.ones(1_000, np.float32))
holding = resident_mb()
del snapshots
freed = resident_mb()
release_freed_memory()
print(json.dumps({"holding": holding, "freed": freed, "released": resident_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_freed_weight_sized_arrays_leave_the_process_once_released():
    output = subprocess.run([sys.executable, "-c", FREED_SNAPSHOTS], capture_output=True, text=True, check=True).stdout
    rss = json.loads(output.strip().splitlines()[-1])
    assert rss["holding"] - rss["freed"] < 100, f"glibc returned the arrays by itself, nothing to test: {rss}"
    assert rss["freed"] - rss["released"] > 250, rss


def test_releasing_changes_no_live_object():
    weights = [np.arange(10.0), {"kernel": np.ones((3, 3))}]
    release_freed_memory()
    assert weights[0].tolist() == list(range(10)) and weights[1]["kernel"].sum() == 9


class Node:
    """An object in a reference cycle, which only the garbage collector frees."""

    def __init__(self):
        self.me = self


def test_older_objects_wait_outside_collections_and_newer_ones_are_collected():
    older = Node()
    older_ref = weakref.ref(older)
    with older_objects_left_out():
        newer = Node()
        newer_ref = weakref.ref(newer)
        del older, newer
        gc.collect()
        assert newer_ref() is None  # what the checks free is created inside: still collected
        assert older_ref() is not None  # frozen: a collection walks only the newer objects
    gc.collect()
    assert older_ref() is None  # back in the oldest generation once the span ends
    assert gc.get_freeze_count() == 0


def test_a_keras_that_does_not_import_leaves_the_error_to_the_checks(monkeypatch):
    def missing():
        raise ImportError("No module named 'keras'")

    monkeypatch.setattr(compat, "keras", missing)
    with older_objects_left_out():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_objects_frozen_already_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with older_objects_left_out():
            assert gc.get_freeze_count() == frozen  # nothing frozen again
        assert gc.get_freeze_count() == frozen  # not unfrozen by us: the process froze them itself
    finally:
        gc.unfreeze()


tensorflow_only = pytest.mark.skipif(compat.backend() != "tensorflow", reason="TensorFlow's gradient registry")


def custom_gradient_names() -> set[str]:
    from tensorflow.python.framework import ops

    return {name for name in ops.gradient_registry._registry if name.startswith(_CUSTOM_GRADIENT)}


def fitted_model():
    keras = compat.keras()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.ones((4, 4), np.float32), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    return model


@tensorflow_only
def test_a_dead_models_training_graph_leaves_tensorflows_gradient_registry():
    before = custom_gradient_names()
    model = fitted_model()
    registered = custom_gradient_names() - before
    assert registered, "Keras' training step registered no custom gradient: nothing to test"
    step_graph = weakref.ref(_graph_of_registration(next(iter(registered))))
    del model
    release_freed_memory()
    assert not custom_gradient_names() & registered
    assert step_graph() is None


@tensorflow_only
def test_a_live_models_registration_stays_and_it_still_trains():
    before = custom_gradient_names()
    model = fitted_model()
    registered = custom_gradient_names() - before
    release_freed_memory()
    assert registered <= custom_gradient_names()
    model.fit(np.ones((4, 4), np.float32), np.array([0, 1, 0, 1]), epochs=1, verbose=0)


def _graph_of_registration(name: str):
    from tensorflow.python.framework import ops

    return _graph_of(ops.gradient_registry._registry[name]["type"])
