"""check_variables_change: every trained weight moves in fit, no frozen one does, statistics aside."""

import dataclasses
import re

import numpy as np
import pytest
from broken_pipelines.common import DATA, small_pipeline, where_caught
from broken_pipelines.training import (
    CASES,
    disconnected_aux_head,
    frozen_base,
    frozen_base_not_recompiled,
    stop_gradient_in_path,
    zero_learning_rate,
)

from pipeline_checks.checks import check_variables_change
from pipeline_checks.checks import variables_change as module
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.run.training import shared_run

# The stop_gradient pipeline's own warning, as Keras gives it to users.
pytestmark = pytest.mark.filterwarnings("ignore:Gradients do not exist for variables:UserWarning")

IMAGES = DATA.images.copy()


def test_zero_learning_rate_names_the_weights_not_the_statistics(pipeline_of):
    result = check_variables_change(pipeline_of(zero_learning_rate))
    assert result.summary.startswith("10 of 10 trainable weights never changed in 45 steps of fit (conv2d")
    assert "Likely cause: the optimizer's learning rate is 0" in result.details
    assert "moving_mean" not in str(result) and "moving_variance" not in str(result)
    assert result.numbers["unchanged"] == 10


def test_disconnected_branch(pipeline_of):
    result = check_variables_change(pipeline_of(disconnected_aux_head))
    assert "(aux_head/kernel, aux_head/bias)" in result.summary
    assert "Likely cause: these weights are disconnected from the loss" in result.details
    assert "Fix: connect the branch to the output" in result.details


def test_stop_gradient_stops_everything_before_it(pipeline_of):
    result = check_variables_change(pipeline_of(stop_gradient_in_path))
    unchanged = result.details.splitlines()[0]
    assert re.search(
        r"conv2d(_\d+)?/kernel, conv2d(_\d+)?/bias, batch_normalization(_\d+)?/gamma, "
        r"batch_normalization(_\d+)?/beta\.$",
        unchanged,
    )
    assert re.search(
        r"every weight up to batch_normalization(_\d+)? stopped, and all after it train: a stop_gradient",
        result.details,
    )


@where_caught(CASES, frozen_base_not_recompiled, "variables_change")
def test_frozen_weights_that_move_fail(pipeline_of):
    result = check_variables_change(pipeline_of(frozen_base_not_recompiled))
    assert result.summary.startswith("8 of 8 frozen weights changed (base/conv2d")
    assert "call compile() again after setting trainable" in result.details


@pytest.mark.parametrize("factory", [small_pipeline, frozen_base], ids=["small-cnn", "frozen-base"])
def test_passes_correct_pipeline(pipeline_of, factory):
    result = check_variables_change(pipeline_of(factory))
    assert result.passed, str(result)
    assert re.fullmatch(r"all \d+ trainable weights changed in fit \(45 steps\)", result.summary)


def test_lists_frozen_layers_without_failing(pipeline_of):
    result = check_variables_change(pipeline_of(frozen_base))
    assert result.summary == "all 2 trainable weights changed in fit (45 steps)"
    assert re.search(r"Frozen, not trained and unchanged: 4 layers \(base/conv2d(_\d+)?, ", result.details)
    assert result.numbers["frozen_weights"] == 8


def test_weights_that_change_only_later_pass(pipeline_of, monkeypatch):
    run = shared_run(pipeline_of(small_pipeline))
    late = dataclasses.replace(run, after_first_step=run.initial)  # as if the first batch had zero gradients
    monkeypatch.setattr(module, "shared_run", lambda pipeline, seed: late)
    result = check_variables_change(run.pipeline)
    assert result.passed
    assert result.summary == "all 10 trainable weights changed in fit (45 steps), 10 only after the first step"
    assert result.details.startswith("Changed only after the first step (zero gradient on the first batch): conv2d")


def test_raise_if_failed(pipeline_of):
    failing = check_variables_change(pipeline_of(disconnected_aux_head))
    with pytest.raises(PipelineCheckFailure) as raised:
        failing.raise_if_failed()
    assert str(raised.value) == str(failing)
    assert str(raised.value).startswith("check variables_change FAILED on pipeline 'disconnected-aux-head': 2 of 12")
    passing = check_variables_change(pipeline_of(small_pipeline))
    assert passing.raise_if_failed() is passing


def test_leaves_the_pipeline_unchanged(pipeline_of):
    pipeline = pipeline_of(stop_gradient_in_path)
    check_variables_change(pipeline)
    assert np.array_equal(pipeline.raw_data().images, IMAGES)
    assert pipeline.fit_kwargs == {"epochs": 15, "batch_size": 4}
