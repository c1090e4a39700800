"""check_overfit: memorization where most weights train, learning for a head on a frozen base,
the target from the argument, the pipeline's check_options or the default, and evaluate kept
within one sample."""

import functools
import re
from types import SimpleNamespace

import pytest
from broken_pipelines import families
from broken_pipelines.capacity import (
    frozen_conv_base_dead_head,
    frozen_conv_base_head,
    frozen_conv_base_learning_rate_0,
)
from broken_pipelines.common import compiled_cnn, small_pipeline
from broken_pipelines.inference import learning_rate_too_low

from pipeline_checks import Pipeline, make_tiny_images
from pipeline_checks.checks import check_overfit
from pipeline_checks.checks import overfit as module
from pipeline_checks.model import compat
from pipeline_checks.run.training import shared_run
from pipeline_checks.testing.small_models import small_bn_cnn

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
            "it takes target_accuracy, tolerance, target_r2; received: check_options['overfit']={'target': 0.9}",
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
    # Keras 2's run lowers the loss by 10% in its 15 epochs, so it is continued, and still falls short.
    below = r"below the target 1, in 15 epochs( and 150 more continued from its end)?"
    assert re.search(below + r": the trainable weights moved by 0\.\d+% of their size$", result.summary)
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


# --- not done yet: the fit continued from its end ---------------------------------------------


def slow_learner():
    """Learning rate 1e-4 for 40 epochs: the loss falls (1.64 to 0.89) and fit reaches 0.67 of the
    12 images, short of 1; continued from its end it reaches 1 (92 more epochs on TensorFlow)."""
    build = functools.partial(compiled_cnn, learning_rate=1e-4)
    return small_pipeline("slow-learner", build_model=build, fit_kwargs={"epochs": 40, "batch_size": 4})


def variables_of(model):
    """Every variable of the model and its optimizer (weights, BN statistics, slots, iterations)."""
    return [compat.to_numpy(v).copy() for v in [*model.variables, *compat.optimizer_variables(model.optimizer)]]


def test_a_model_that_learns_but_is_not_done_is_continued_bounded_and_put_back_bit_for_bit(pipeline_of):
    from pipeline_checks.run.continued_fit import MORE_EPOCHS

    assert MORE_EPOCHS == 10  # the bound the numbers below are read against
    pipeline = pipeline_of(slow_learner)
    model = shared_run(pipeline).model
    before = variables_of(model)
    iterations = int(compat.to_numpy(model.optimizer.iterations))
    result = check_overfit(pipeline)
    assert result.passed, str(result)
    assert re.match(r"fit reached accuracy 1 after \d+ more epochs continued from its end; evaluate", result.summary)
    continued = result.numbers["continued_epochs"]
    assert 0 < continued <= 10 * 40 and result.numbers["continued_seconds"] > 0
    assert re.search(rf"\({continued} of at most 400 \(10 times its 40 epochs\), \d+\.\d s\)", result.details)
    after = variables_of(model)
    assert len(after) == len(before) and all((a == b).all() for a, b in zip(after, before))
    assert int(compat.to_numpy(model.optimizer.iterations)) == iterations == 40 * 3


def test_a_learning_rate_100_times_too_small_fails_even_when_continued(pipeline_of, monkeypatch):
    """1e-5 with Adam: its 15 epochs show no learning, so it is not continued; made to continue
    anyway, the 150 epochs allowed still leave it short."""
    pipeline = pipeline_of(learning_rate_too_low)
    not_continued = check_overfit(pipeline)
    assert not not_continued.passed
    if compat.is_keras3():  # Keras 2's 15 epochs lower the loss by 10%: continued, and short all the same
        assert "Not continued: its 15 epochs show no learning" in not_continued.details
    monkeypatch.setattr(module, "_learning_not_shown", lambda fit, signals: "")
    continued = check_overfit(pipeline)
    assert not continued.passed, str(continued)
    assert continued.numbers["continued_epochs"] == 10 * 15
    assert "in 15 epochs and 150 more continued from its end" in continued.summary


def test_a_given_target_is_not_continued(pipeline_of):
    result = check_overfit(pipeline_of(slow_learner), target_accuracy=1.0)
    assert not result.passed and "continued_epochs" not in result.numbers


# --- a model compiled without metrics: the check's own predictions ------------------------------


def cnn_without_metrics(learning_rate):
    keras = compat.keras()
    model = small_bn_cnn((16, 16, 3), classes=3)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    return model


def no_metrics():
    return small_pipeline("no-metrics", build_model=functools.partial(cnn_without_metrics, 0.01))


def no_metrics_learning_rate_too_low():
    return small_pipeline("no-metrics-lr-1e-5", build_model=functools.partial(cnn_without_metrics, 1e-5))


def test_a_model_compiled_without_metrics_is_judged_from_its_predictions(pipeline_of):
    learns = check_overfit(pipeline_of(no_metrics))
    assert learns.passed, str(learns)
    assert learns.summary.startswith(
        "fit reached accuracy of the predictions 1 by the end of its 15 epochs (the predictions' accuracy: the "
        "model compiles no accuracy metric)"
    )
    assert learns.numbers["reached_at_epoch"] == 15
    stalls = check_overfit(pipeline_of(no_metrics_learning_rate_too_low))
    assert not stalls.passed
    assert "accuracy of the predictions at best, below the target 1" in stalls.summary
    assert "reports no accuracy" not in str(stalls)


# --- messages name only the mechanisms the model has ------------------------------------------


def augmented_cnn_without_batchnorm():
    """A Conv-Dense CNN with no BatchNormalization, RandomFlip in the model."""
    keras = compat.keras()
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.RandomFlip("horizontal", seed=0),
            layers.Conv2D(8, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ],
        name="no_batchnorm",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_model_without_batchnorm_is_told_without_batchnorm():
    model = augmented_cnn_without_batchnorm()
    shortfall = module._inference_shortfall(model, False, "fit reached accuracy 1 at epoch 9 of 15, but", 0.75, 3, 12)
    text = f"{shortfall.summary} {shortfall.detail} {shortfall.fix}"
    assert "BatchNorm" not in text and "recalibrat" not in text, text
    assert shortfall.summary.endswith("but evaluate gives 0.7500 on the same images (3 of 12 samples)")
    # Keras numbers a layer's default name by the layers made before it in the session: random_flip_25.
    assert re.search(r"random_flip(_\d+)? active", shortfall.detail), shortfall.detail
    assert re.search(r"random_flip(_\d+)? active in fit", shortfall.fix), shortfall.fix


def test_a_passing_model_without_batchnorm_names_no_recalibration(pipeline_of):
    pipeline = pipeline_of(
        lambda: small_pipeline("augmented-no-batchnorm", build_model=augmented_cnn_without_batchnorm, after_fit=None)
    )
    result = check_overfit(pipeline)
    assert result.passed, str(result)
    assert re.search(r"; evaluate 1\.0000$", result.summary), result.summary
