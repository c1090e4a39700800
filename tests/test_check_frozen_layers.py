"""check_frozen_layers: frozen weights and frozen BN statistics stay put through fit, told apart."""

import numpy as np
import pytest
from broken_pipelines.common import DATA, where_caught, where_fit_runs
from broken_pipelines.training import (
    CASES,
    frozen_base,
    frozen_base_not_recompiled,
    frozen_ported_batchnorm,
    zero_learning_rate,
)

from pipeline_checks.checks import check_frozen_layers
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.model import compat
from pipeline_checks.run.training import shared_run

IMAGES = DATA.images.copy()


@where_caught(CASES, frozen_base_not_recompiled, "frozen_layers")
def test_stale_train_function_moves_weights_and_statistics(pipeline_of):
    result = check_frozen_layers(pipeline_of(frozen_base_not_recompiled))
    assert "frozen weights moved: 8 of 8" in result.summary
    assert "frozen BN moving statistics moved: 4 of 4" in result.summary
    assert "The optimizer had taken 3 steps before this run's fit" in result.details
    assert result.numbers["frozen_weights_moved"] == 8 and result.numbers["largest_weight_change"] > 0


def test_ported_batchnorm_moves_statistics_not_weights(pipeline_of):
    result = check_frozen_layers(pipeline_of(frozen_ported_batchnorm))
    assert "frozen weights moved" not in str(result)
    assert result.summary.startswith("frozen BN moving statistics moved: 4 of 4 in 2 layers")
    assert "base/ported_batch_norm" in result.details
    assert result.numbers["frozen_weights_moved"] == 0 and result.numbers["frozen_statistics_moved"] == 4


@pytest.mark.parametrize(
    "factory, summary",
    [
        (frozen_base, "fit kept all 8 weights and 4 statistics of 4 frozen layers unchanged"),
        (zero_learning_rate, "no layer is frozen: nothing to keep still"),
    ],
    ids=["frozen-and-recompiled", "zero-learning-rate"],
)
def test_passes_correct_pipeline(pipeline_of, factory, summary):
    result = check_frozen_layers(pipeline_of(factory))
    assert result.passed, str(result)
    assert result.summary == summary


def test_trainable_statistics_that_move_are_not_frozen(pipeline_of):
    """With learning rate 0, BN statistics move and no weight does: neither is a frozen move."""
    pipeline = pipeline_of(zero_learning_rate)
    run = shared_run(pipeline)
    moved = [
        compat.variable_path(v) for v, a, b in zip(run.weights, run.initial, run.final) if not np.array_equal(a, b)
    ]
    assert moved and all("moving_" in path for path in moved)
    assert check_frozen_layers(pipeline).passed


def test_raise_if_failed(pipeline_of):
    failing = check_frozen_layers(pipeline_of(frozen_ported_batchnorm))
    with pytest.raises(PipelineCheckFailure) as raised:
        failing.raise_if_failed()
    assert str(raised.value) == str(failing)
    assert str(raised.value).startswith("check frozen_layers FAILED on pipeline 'frozen-ported-batchnorm': ")
    passing = check_frozen_layers(pipeline_of(frozen_base))
    assert passing.raise_if_failed() is passing


@where_fit_runs(CASES, frozen_base_not_recompiled)
def test_leaves_the_pipeline_unchanged(pipeline_of):
    pipeline = pipeline_of(frozen_base_not_recompiled)
    check_frozen_layers(pipeline)
    assert np.array_equal(pipeline.raw_data().images, IMAGES)
    assert pipeline.fit_kwargs == {"epochs": 15, "batch_size": 4}
