"""What the user's model raises while a check runs it is a PipelineRunError naming the pipeline and
the step, with the likely cause where Keras' own message does not name it; the checks' own refusals
stay as they are."""

import numpy as np
import pytest
from helpers.pipelines import small_pipeline

from pipeline_checks.checks import check_agreement, check_labels
from pipeline_checks.checks.family import raised_by_the_model
from pipeline_checks.errors import PipelineRunError
from pipeline_checks.model import compat
from pipeline_checks.model.compile_arguments import compile_mistake
from pipeline_checks.run.training import forget_shared_runs


def raises_at_inference():
    """A small model whose custom layer raises in inference mode only: fit trains it, evaluate does not run."""
    keras = compat.keras()

    class TrainingOnly(keras.layers.Layer):
        def call(self, x, training=None):
            if training is False:  # building the model calls it with None
                raise RuntimeError("this layer runs in training only")
            return x

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Flatten()(TrainingOnly()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_model_that_raises_in_a_checks_own_pass_is_a_pipeline_run_error():
    pipeline = small_pipeline("raises-at-inference", build_model=raises_at_inference, fit_kwargs={"epochs": 1})
    try:
        with pytest.raises(
            PipelineRunError,
            match=r"Pipeline 'raises-at-inference': the model in check_agreement's own passes raised RuntimeError",
        ):
            check_agreement(pipeline)
        with pytest.raises(
            PipelineRunError, match=r"check_labels' passes\) raised RuntimeError(.|\n)*this layer runs in training only"
        ):
            check_labels(pipeline)
    finally:
        forget_shared_runs(pipeline)


def test_a_refusal_of_the_checks_is_not_blamed_on_the_model():
    with pytest.raises(ValueError, match="tolerance") as refused:
        check_agreement(small_pipeline(), tolerance=-1)
    assert not raised_by_the_model(refused.value)


@pytest.mark.skipif(not compat.is_keras3(), reason="Keras 2's third compile argument is metrics")
def test_metrics_passed_by_position_are_named_as_loss_weights():
    keras = compat.keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    assert "compile(optimizer, loss, metrics=['accuracy'])" in compile_mistake(model)
    model.compile("adam", "categorical_crossentropy", [1.0])  # numbers are loss weights
    assert compile_mistake(model) is None
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    assert compile_mistake(model) is None
    with pytest.raises(ValueError, match="not a valid dtype"):  # Keras' own message names neither argument
        model.compile("adam", "categorical_crossentropy", ["accuracy"])
        model.fit(np.zeros((4, 4)), np.eye(3)[[0, 1, 2, 0]], verbose=0)
