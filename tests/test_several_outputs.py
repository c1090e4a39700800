"""A model with several outputs: targets per output, each output judged with its own loss and metrics."""

import numpy as np
import pytest
from broken_pipelines.several_outputs import (
    TARGETS,
    two_outputs,
    two_outputs_sigmoid_value,
    two_outputs_stale_batchnorm,
)
from helpers.pipelines import DATA

from pipeline_checks.checks import FAMILIES, all_checks, check_agreement, check_labels
from pipeline_checks.model import compat
from pipeline_checks.model.output_models import output_logs
from pipeline_checks.pipelines.pipeline import Pipeline
from pipeline_checks.run.training import shared_run


def test_targets_by_output_name_are_read_as_each_outputs_own():
    raw = two_outputs().raw_data()
    assert raw.task == "several outputs"
    assert [key for key, _ in raw.outputs] == ["kind", "value"]
    assert raw.output("kind").task == "classification" and raw.output("kind").class_names == ("0", "1", "2")
    assert raw.output("value").task == "regression" and raw.output("value").labels.dtype == np.float32
    assert len(raw) == 12 and len(raw.part(0, 5).output("value")) == 5


def test_targets_as_a_list_are_keyed_by_position_and_given_to_fit_as_a_list():
    pipeline = two_outputs(targets=list(TARGETS.values()))
    raw = pipeline.raw_data()
    assert [key for key, _ in raw.outputs] == [0, 1]
    targets = pipeline.targets(raw)
    assert isinstance(targets, list) and targets[0].dtype == np.int32 and targets[1].dtype == np.float32


def test_an_output_with_other_than_one_target_per_row_is_refused_in_one_line():
    short = {**TARGETS, "value": TARGETS["value"][:5]}
    with pytest.raises(
        ValueError, match=r"^Pipeline 'p': data targets\['value'\] must hold one target per row of the "
    ):
        Pipeline("p", lambda: None, (DATA.images, short)).raw_data()


def test_targets_named_otherwise_than_the_models_outputs_are_refused_naming_both():
    misspelt = {"knid": TARGETS["kind"], "value": TARGETS["value"]}
    result = pytest.raises(ValueError, check_labels, two_outputs(targets=misspelt))
    assert "data's targets name 'knid', 'value', but the model's outputs are 'kind', 'value'" in str(result.value)


def test_fit_logs_are_read_as_one_outputs_under_a_one_output_fits_names():
    logs = {"loss": 3.0, "kind_loss": 1.0, "kind_accuracy": 0.5, "kind_2_loss": 2.0, "val_kind_accuracy": 0.25}
    names = ("kind", "kind_2")
    assert output_logs(logs, "kind", names) == {"loss": 1.0, "accuracy": 0.5, "val_accuracy": 0.25}
    assert output_logs(logs, "kind_2", names) == {"loss": 2.0}  # the longest name that prefixes a key owns it


def test_only_the_families_that_judge_targets_judge_output_by_output():
    per_output = {name for name, check in all_checks().items() if check.family.per_output}
    assert per_output == {"labels", "overfit", "agreement"} and per_output <= set(FAMILIES)


def test_labels_fails_naming_the_output_whose_head_cannot_reach_its_targets():
    result = check_labels(two_outputs_sigmoid_value())
    assert not result.passed
    assert result.summary.startswith("2 outputs judged apart; failed on 'value'; output 'kind': sparse labels in 0..2")
    assert "output 'value': a sigmoid output cannot reach" in result.summary
    assert set(result.numbers["outputs"]) == {"kind", "value"}


def test_judging_one_output_leaves_the_whole_model_as_fit_left_it():
    pipeline = two_outputs_stale_batchnorm()  # recalibrating its BatchNorm statistics moves them far
    run = shared_run(pipeline)
    before = [compat.to_numpy(v) for v in run.model.weights]
    result = check_agreement(pipeline)  # recalibrates BatchNorm through each output's view, then restores it
    assert all(np.array_equal(a, compat.to_numpy(b)) for a, b in zip(before, run.model.weights))
    assert "failed on 'value'" in result.summary and "output 'kind': the modes agree" in result.summary
