"""Pipeline(train=...): the repository's own training function, recorded stage by stage."""

import re

import numpy as np
import pytest
from broken_pipelines.common import DATA, compiled_cnn, small_pipeline
from broken_pipelines.stages import (
    custom_train_step,
    fine_tune_stages,
    freeze_without_recompile_stages,
    gradient_tape,
    gradient_tape_stale_variables,
    unfreeze_without_recompile_stages,
)

from pipeline_checks.checks import (
    all_checks,
    check_frozen_layers,
    check_variables_change,
)
from pipeline_checks.errors import PipelineRunError
from pipeline_checks.model import compat
from pipeline_checks.run.training import forget_shared_runs, shared_run, train

tensorflow_only = pytest.mark.skipif(
    compat.backend() != "tensorflow" or not compat.is_keras3(), reason="GradientTape: Keras 3 on TensorFlow"
)
NO_FIT = re.compile(r"do(es)? not exist for a custom loop")


@pytest.fixture
def forget():
    """Drop the pipelines' shared runs after the test."""
    pipelines = []
    yield pipelines.append
    for pipeline in pipelines:
        forget_shared_runs(pipeline)
    compat.keras().backend.clear_session()


def every_check(pipeline) -> dict:
    return {name: check(pipeline) for name, check in all_checks().items()}


def ids(variables) -> frozenset:
    return frozenset(id(v) for v in variables)


def test_train_must_be_callable():
    with pytest.raises(TypeError, match=r"train must be callable; received: train=3"):
        small_pipeline(train=3)


def test_a_run_without_train_is_one_stage(forget):
    pipeline = small_pipeline("one-stage", fit_kwargs={"epochs": 2, "batch_size": 4}, after_fit=None)
    forget(pipeline)
    run = shared_run(pipeline)
    (stage,) = run.stages
    assert (stage.index, stage.label, stage.steps) == (1, "fit 1", 6)
    assert stage.start is run.initial and stage.end is run.final and stage.history is run.history
    assert stage.trainable == run.trainable == ids(run.model.trainable_weights)
    assert "fit" not in vars(run.model)


def test_fine_tune_records_two_stages_and_passes_every_check(forget):
    pipeline = fine_tune_stages()
    forget(pipeline)
    run = shared_run(pipeline)
    model = run.model
    base, head = model.get_layer("base"), model.get_layer("head")
    first, second = run.stages
    assert [(s.index, s.label, s.steps) for s in run.stages] == [(1, "fit 1", 15), (2, "fit 2", 30)]
    assert first.trainable == ids(head.trainable_weights)
    assert second.trainable == ids(model.trainable_weights) == ids([*base.trainable_weights, *head.trainable_weights])
    assert run.trainable == first.trainable | second.trainable
    assert run.history is second.history and len(first.history.history["loss"]) == 5
    assert run.initial is first.start  # run.final is taken when train returns: here, as fit 2 ended
    assert all(np.array_equal(a, b) for a, b in zip(run.final, second.end))
    moved = [not np.array_equal(a, b) for a, b in zip(first.start, first.end)]
    assert not any(m for m, v in zip(moved, run.weights) if id(v) in ids(base.weights))  # frozen in fit 1
    assert "fit" not in vars(model)
    results = every_check(pipeline)
    assert all(r.passed for r in results.values()), {n: r.summary for n, r in results.items() if not r.passed}
    assert "stage 1 of 2 (fit 1): 8 weights and 4 statistics of 4 frozen layers" in results["frozen_layers"].summary
    assert "(stage 1 of 2, fit 1)" in results["overfit"].summary
    assert (
        "after the first epoch of fit 1 (of 2 stages, all trained on the same data)" in results["determinism"].summary
    )
    assert "The fit mode is the last stage's (fit 2 of 2 stages) last epoch." in results["agreement"].details


def test_a_base_frozen_without_recompiling_fails_naming_the_stage(forget):
    pipeline = freeze_without_recompile_stages()
    forget(pipeline)
    result = check_frozen_layers(pipeline)
    assert not result.passed
    assert result.summary.startswith("in stage 2 of 2 (fit 2): frozen weights moved: 8 of 8 in 4 layers")
    assert "Here an earlier stage's fit traced it: fit 2 reuses it." in result.details
    assert result.numbers["stages"] == 2 and result.numbers["frozen_weights_moved"] == 8


def test_a_base_unfrozen_without_recompiling_never_trains(forget):
    """Keras 3 on TensorFlow keeps fit 1's train function: the unfrozen base does not move in fit 2."""
    pipeline = unfreeze_without_recompile_stages()
    forget(pipeline)
    assert check_frozen_layers(pipeline).passed  # frozen in fit 1, kept still: nothing to blame there
    result = check_variables_change(pipeline)
    assert not result.passed
    assert result.summary.startswith("8 of 10 trainable weights never changed in 45 steps of fit")
    assert "frozen in fit 1 and set trainable for fit 2 (stage 2 of 2), without compiling again" in result.details


@tensorflow_only
def test_a_subclassed_model_with_its_own_train_step(forget):
    pipeline = custom_train_step()
    forget(pipeline)
    run = shared_run(pipeline)
    assert [s.label for s in run.stages] == ["fit 1"] and run.stages[0].steps == 45
    assert "accuracy" in run.history.history and not run.custom_loop
    assert "fit" not in vars(run.model)
    results = every_check(pipeline)
    assert all(r.passed for r in results.values()), {n: r.summary for n, r in results.items() if not r.passed}


@tensorflow_only
def test_a_gradient_tape_loop_is_checked_and_says_what_it_could_not_measure(forget):
    pipeline = gradient_tape()
    forget(pipeline)
    run = shared_run(pipeline)
    (stage,) = run.stages
    assert stage.custom and stage.label == "custom loop" and stage.history is None and stage.steps == 0
    assert run.custom_loop and run.history is None and run.batch_losses == []
    assert any(not np.array_equal(a, b) for a, b in zip(run.initial, run.final))
    results = every_check(pipeline)
    assert all(r.passed for r in results.values()), {n: r.summary for n, r in results.items() if not r.passed}
    for name in ("agreement", "numerics", "determinism"):
        assert NO_FIT.search(results[name].summary), results[name].summary
    assert "fit" not in results["agreement"].headline
    assert "the custom loop reached accuracy 1 by its end" in results["overfit"].summary
    assert NO_FIT.search(results["overfit"].details)
    assert results["variables_change"].summary == "all 10 trainable weights changed in the custom loop"


@tensorflow_only
def test_a_loop_training_frozen_layers_fails_frozen_layers(forget):
    pipeline = gradient_tape_stale_variables()
    forget(pipeline)
    result = check_frozen_layers(pipeline)
    assert not result.passed
    assert result.summary.startswith("in stage 1 of 1 (custom loop): frozen weights moved: 4 of 4 in 2 layers")
    assert "the loop applies gradients to" in result.details


def test_fit_is_restored_when_train_raises(forget):
    models = []

    def failing(model, data):
        models.append(model)
        model.fit(*data, epochs=1, batch_size=4)
        raise ValueError("no more data")

    pipeline = small_pipeline("train-raises", build_model=compiled_cnn, train=failing)
    forget(pipeline)
    with pytest.raises(PipelineRunError, match=r"Pipeline 'train-raises': train raised ValueError: no more data"):
        train(pipeline)
    (model,) = models
    assert "fit" not in vars(model)
    assert model.fit.__func__ is type(model).fit


def test_train_gets_the_arrays_fit_would_get(forget):
    seen = []

    def record(model, data):
        seen.append(data)
        return model.fit(*data, epochs=1, batch_size=4)

    pipeline = small_pipeline("train-data", train=record, after_fit=None)
    forget(pipeline)
    run = shared_run(pipeline)
    ((x, y),) = seen
    assert x is run.x_train and y is run.y_train
    assert len(y) == len(DATA.labels) and run.stages[0].steps == 3
