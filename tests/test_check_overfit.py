"""check_overfit: memorization where most weights train, learning for a head on a frozen base,
the target from the argument, the pipeline's check_options or the default, and evaluate kept
within one sample."""

import re
from types import SimpleNamespace

import pytest
from broken_pipelines import families
from broken_pipelines.capacity import (
    frozen_conv_base_dead_head,
    frozen_conv_base_head,
    frozen_conv_base_learning_rate_0,
)
from broken_pipelines.common import small_pipeline
from broken_pipelines.inference import learning_rate_too_low

from pipeline_checks import Pipeline, make_tiny_images
from pipeline_checks.checks import check_overfit
from pipeline_checks.checks import overfit as module
from pipeline_checks.model import compat
from pipeline_checks.run.training import shared_run

BINARY = make_tiny_images(classes=2, per_class=6, size=16, seed=0)


def scaled(images):
    return images.astype("float32") / 255.0


def with_options(**options):
    """The small CNN (it reaches accuracy 1 at epoch 2) with check_options for overfit."""
    return lambda: small_pipeline("small-cnn-options", check_options={"overfit": options})


def frozen_head_binary_accuracy():
    """One sigmoid unit on the frozen conv base, its metric named "binary_accuracy"."""

    def build():
        model = families.frozen_conv_base(classes=2)
        metric = compat.keras().metrics.BinaryAccuracy(name="binary_accuracy")
        model.compile(optimizer=compat.keras().optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=[metric])
        return model

    return Pipeline(
        "frozen-head-binary", build, BINARY, preprocess_train=scaled, fit_kwargs={"epochs": 10, "batch_size": 4}
    )


# --- where the target comes from ----------------------------------------------------------------


def test_the_target_is_the_argument_else_the_pipeline_option_else_automatic(pipeline_of):
    pipeline = pipeline_of(with_options(target_accuracy=0.5))
    by_option = check_overfit(pipeline)
    assert by_option.passed and by_option.numbers["target"] == 0.5
    assert re.match(r"fit reached accuracy 0\.5 at epoch \d+ of 15", by_option.summary)
    by_argument = check_overfit(pipeline, target_accuracy=0.9)
    assert by_argument.numbers["target"] == 0.9 and "fit reached accuracy 0.9 at epoch" in by_argument.summary
    automatic = check_overfit(pipeline_of(small_pipeline))
    assert (
        automatic.numbers["target"] == 1.0
        and "Target 1 because 100.0% of the model's weights train" in automatic.details
    )


def test_a_pipeline_without_options_has_none():
    assert small_pipeline().check_options == {}


@pytest.mark.parametrize(
    "options, message",
    [
        pytest.param(
            {"target": 0.9},
            "Pipeline 'small-cnn-options': check_options['overfit'] sets target, which check_overfit does not take; "
            "it takes target_accuracy, tolerance; received: check_options['overfit']={'target': 0.9}",
            id="unknown-option",
        ),
        pytest.param(
            {"target_accuracy": 1.5},
            "Pipeline 'small-cnn-options': check_options['overfit']: target_accuracy must be a number in (0, 1]; "
            "received: target_accuracy=1.5",
            id="target-above-1",
        ),
        pytest.param(
            {"tolerance": "5%"},
            "Pipeline 'small-cnn-options': check_options['overfit']: tolerance must be a number in [0, 1); "
            "received: tolerance='5%'",
            id="tolerance-not-a-number",
        ),
    ],
)
def test_bad_options_are_refused_before_training_naming_the_pipeline(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_overfit(with_options(**options)())


# --- a head on a frozen base: learning, not memorization --------------------------------------


def test_a_head_on_a_frozen_base_passes_when_it_learns_without_memorizing(pipeline_of):
    result = check_overfit(pipeline_of(frozen_conv_base_head))
    assert result.passed, str(result)
    assert result.numbers["best_accuracy"] < 1.0 and result.numbers["target"] is None
    assert result.summary.startswith("the trainable part learns: loss ")
    assert (
        "No target: only 1.8% of the model's weights train (51 of 2,883 parameters); frozen: conv_base"
        in result.details
    )
    assert result.numbers["loss_after"] < result.numbers["loss_before"]


def test_the_same_head_fails_a_target_it_is_given(pipeline_of):
    pipeline = pipeline_of(frozen_conv_base_head)
    result = check_overfit(pipeline, target_accuracy=1.0)
    assert not result.passed
    assert re.match(r"fit reached 0\.\d+ accuracy at best, below the target 1, in 10 epochs", result.summary)
    assert "check_options={'overfit': {'target_accuracy': ...}}" in result.details


@pytest.mark.parametrize(
    "factory, summary, cause, fix",
    [
        pytest.param(
            frozen_conv_base_learning_rate_0,
            "none of the 2 trainable weights moved in 30 steps",
            "a learning rate of 0, or no gradient reaches them",
            "set a learning rate above 0",
            id="learning-rate-0",
        ),
        pytest.param(
            frozen_conv_base_dead_head,
            "the model gives all 12 images the same output",
            "dead units (ReLUs that no image activates)",
            "look for ReLU layers with large negative biases",
            id="dead-units",
        ),
    ],
)
def test_a_head_that_cannot_learn_fails_with_the_mechanism_its_cause_and_fix(pipeline_of, factory, summary, cause, fix):
    result = check_overfit(pipeline_of(factory))
    assert not result.passed
    assert result.summary == f"the trainable part does not learn: {summary}"
    assert f"\n  {summary}: " in result.details  # the mechanism is a finding of its own, with its evidence
    assert f"\n    Likely cause: {cause}" in result.details and f"\n    Fix: {fix}" in result.details


def test_a_binary_head_is_judged_on_its_own_metric_against_the_majority_share(pipeline_of):
    result = check_overfit(pipeline_of(frozen_head_binary_accuracy))
    assert result.passed, str(result)
    assert result.numbers["chance"] == 0.5
    assert "binary_accuracy" in result.summary and "(chance 0.50)" in result.summary


def test_a_model_short_of_its_target_names_steps_too_small(pipeline_of):
    result = check_overfit(pipeline_of(learning_rate_too_low))
    assert not result.passed
    assert re.search(
        r"below the target 1, in 15 epochs: the trainable weights moved by 0\.\d+% of their size$", result.summary
    )
    assert "in 45 steps with learning rate 1e-05, against their size at initialization" in result.details
    assert "\n    Likely cause: steps far too small to fit in these epochs" in result.details


# --- the second half: evaluate keeps what fit reached, but for one sample --------------------


def recalibrated_accuracy(monkeypatch, accuracy):
    """The shared agreement, with the recalibrated accuracy replaced: evaluate short by some samples."""
    agreement = SimpleNamespace(values={"evaluate": {"accuracy": accuracy}, "recalibrated": {"accuracy": accuracy}})
    monkeypatch.setattr(module, "agreement_of", lambda run, tolerance: agreement)


@pytest.mark.parametrize("wrong, passes", [(0, True), (1, True), (2, False)])
def test_evaluate_may_miss_one_sample_of_the_target_but_not_two(pipeline_of, monkeypatch, wrong, passes):
    pipeline = pipeline_of(small_pipeline)
    recalibrated_accuracy(monkeypatch, (12 - wrong) / 12)
    result = check_overfit(pipeline)
    assert result.passed is passes, str(result)
    if not passes:
        assert result.summary.endswith(
            "evaluate after BatchNorm recalibration gives 0.8333 on the same images (2 of 12 samples)"
        )


def test_the_tolerance_option_applies_to_the_second_half(pipeline_of, monkeypatch):
    pipeline = pipeline_of(with_options(tolerance=0.2))
    recalibrated_accuracy(monkeypatch, 10 / 12)  # 2 samples, 0.167 below: within 0.2
    assert check_overfit(pipeline).passed


# --- what the check leaves as it found it -----------------------------------------------------


def test_probing_the_loss_before_fit_restores_every_weight(pipeline_of):
    pipeline = pipeline_of(frozen_conv_base_head)
    run = shared_run(pipeline)
    before = [compat.to_numpy(v).copy() for v in run.model.weights]
    check_overfit(pipeline)
    assert all((compat.to_numpy(v) == b).all() for v, b in zip(run.model.weights, before))
