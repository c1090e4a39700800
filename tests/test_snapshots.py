"""A run's weight snapshots hold an unchanged weight once, not once per snapshot.

A Keras application's weights are about 100 MB; the shared run keeps them initially, after
the first step, after the first epoch and at the end, and the determinism replay again.
"""

import numpy as np
from broken_pipelines.common import small_pipeline

from pipeline_checks.model import compat
from pipeline_checks.model.on_disk import OnDisk
from pipeline_checks.model.state import VariableSnapshot, weight_values
from pipeline_checks.run.training import forget_shared_runs, replay, shared_run


def variable(values):
    """A float32 variable of any Keras (Keras 2 has no `keras.Variable`)."""
    if compat.is_keras3():
        return compat.keras().Variable(np.array(values, "float32"))
    import tensorflow as tf

    return tf.Variable(np.array(values, "float32"))


def test_a_snapshot_keeps_the_earlier_array_of_a_weight_with_the_same_bytes():
    moved, kept, nan = (variable(v) for v in ([1.0, 2.0], [3.0], [np.nan]))
    earlier = weight_values((moved, kept, nan))
    moved.assign(np.array([1.0, 2.5], "float32"))
    later = weight_values((moved, kept, nan), earlier)
    assert later[0] is not earlier[0] and later[0].tolist() == [1.0, 2.5]
    assert later[1] is earlier[1] and later[2] is earlier[2]  # a NaN compares by its bytes
    assert earlier[0].tolist() == [1.0, 2.0]  # the earlier snapshot is untouched
    assert weight_values((kept,), (np.array([3.0], "float64"),))[0].dtype == np.float32  # not the same bytes


def test_a_large_zero_array_is_held_as_one_broadcast_zero_and_restored_as_zeros():
    big, small, negative = variable(np.zeros(1 << 18)), variable(np.zeros(4)), variable(np.full(1 << 18, -0.0))
    snapshot = VariableSnapshot.of((big, small, negative))  # big: 1 MiB of float32
    assert [value.strides for value in snapshot.values] == [(0,), (4,), (4,)]  # -0.0 is not zero bytes
    big.assign(np.ones(1 << 18, "float32"))
    assert [id(v) for v in snapshot.changed()] == [id(big)]
    snapshot.restore()
    assert snapshot.changed() == [] and compat.to_numpy(big).tobytes() == bytes(1 << 20)


def test_a_snapshot_on_disk_holds_its_large_values_in_a_file_and_restores_them_bitwise():
    big, small, kept = variable(np.arange(1 << 18)), variable([1.0, 2.0]), variable(np.ones(1 << 18))
    earlier = {id(kept): compat.to_numpy(kept)}
    snapshot = VariableSnapshot.of((big, small, kept), like=earlier, on_disk=True)
    assert isinstance(snapshot.values[0], OnDisk) and isinstance(snapshot.values[1], np.ndarray)
    assert snapshot.values[2] is earlier[id(kept)]  # held already: not written again
    for v in (big, small, kept):
        v.assign(np.zeros(v.shape, "float32"))
    assert [id(v) for v in snapshot.changed()] == [id(big), id(small), id(kept)]
    snapshot.restore()
    assert snapshot.changed() == []
    assert compat.to_numpy(big).tobytes() == np.arange(1 << 18, dtype="float32").tobytes()


def test_a_one_step_epoch_holds_its_weights_once_for_the_step_the_epoch_and_a_one_epoch_replay():
    pipeline = small_pipeline("snapshots-shared", fit_kwargs={"epochs": 2, "batch_size": 12})  # 12 images: one step
    try:
        run = shared_run(pipeline, 0)
        initial = {id(w): value for w, value in zip(run.weights, run.initial)}
        start = [(id(v), value) for v, value in zip(run.start_state.variables, run.start_state.values)]
        assert all(value is initial[key] for key, value in start if key in initial)  # the state replays start from
        assert all(a is b for a, b in zip(run.after_first_step, run.after_first_epoch))
        # After the second step: shared exactly where the bytes did not move.
        shared = [a is b for a, b in zip(run.after_first_epoch, run.final)]
        assert shared == [a.tobytes() == b.tobytes() for a, b in zip(run.after_first_epoch, run.final)]
        assert not all(shared)
        again = replay(run, epochs=1)
        assert all(a is b for a, b in zip(again.after_first_epoch, again.final))
        assert all(np.array_equal(a, b) for a, b in zip(again.final, run.after_first_epoch))
    finally:
        forget_shared_runs(pipeline)
