"""Pipeline: validation on construction, raw data read lazily and never changed, shared runs."""

import re

import numpy as np
import pytest
from broken_pipelines.common import DATA, compiled_cnn, small_pipeline

from pipeline_checks import Pipeline
from pipeline_checks.checks import CheckResult, check_agreement, check_overfit
from pipeline_checks.errors import PipelineCheckFailure, PipelineRunError
from pipeline_checks.run.training import forget_shared_runs, shared_run


def declared(**changes):
    arguments = {"name": "p", "build_model": compiled_cnn, "data": DATA, **changes}
    return lambda: Pipeline(**arguments)


@pytest.mark.parametrize(
    "declare, error, message",
    [
        pytest.param(
            declared(name=""),
            ValueError,
            "Pipeline name must be a non-empty string; received: name=''",
            id="empty-name",
        ),
        pytest.param(
            declared(build_model="model.keras"),
            TypeError,
            "Pipeline 'p': build_model must be callable; received: build_model='model.keras'",
            id="model-not-callable",
        ),
        pytest.param(
            declared(preprocess_infer=255),
            TypeError,
            "Pipeline 'p': preprocess_infer must be callable; received: preprocess_infer=255",
            id="preprocess-not-callable",
        ),
        pytest.param(
            declared(label_encoding="categorical"),
            ValueError,
            "label_encoding must be one of 'sparse', 'one_hot'; received: label_encoding='categorical'",
            id="unknown-encoding",
        ),
        pytest.param(
            declared(fit_kwargs={"x": 1, "epochs": 2}),
            ValueError,
            "fit_kwargs must not set x: the data comes from `data`",
            id="fit-kwargs-with-x",
        ),
        pytest.param(
            declared(fit_kwargs={"epochs": 0}),
            ValueError,
            "fit_kwargs['epochs'] must be a positive integer; received: 0",
            id="zero-epochs",
        ),
        pytest.param(
            declared(fit_kwargs={"steps_per_epoch": 0}),
            ValueError,
            "Pipeline 'p': fit_kwargs['steps_per_epoch'] must be a positive integer; received: 0",
            id="zero-steps-per-epoch",
        ),
        pytest.param(
            declared(fit_kwargs=[("epochs", 2)]),
            TypeError,
            "fit_kwargs must be a mapping; received: fit_kwargs=[('epochs', 2)]",
            id="fit-kwargs-list",
        ),
        pytest.param(declared(application="ResNet51"), ValueError, "ResNet51", id="unknown-application"),
        pytest.param(
            declared(check_options=[("overfit", {})]),
            TypeError,
            "Pipeline 'p': check_options must be a mapping of check name -> keyword arguments, e.g. {'overfit': "
            "{'target_accuracy': 0.9}}; received: check_options=[('overfit', {})]",
            id="check-options-list",
        ),
        pytest.param(
            declared(check_options={"overfitting": {}}),
            ValueError,
            "Pipeline 'p': check_options names 'overfitting', which is no check; the checks are agreement, "
            "frozen_layers, preprocessing, labels, overfit,",
            id="check-options-unknown-check",
        ),
        pytest.param(
            declared(check_options={"overfit": 0.9}),
            TypeError,
            "Pipeline 'p': check_options['overfit'] must be a mapping of keyword argument names to values, e.g. "
            "{'overfit': {'target_accuracy': 0.9}}; received: check_options['overfit']=0.9",
            id="check-options-not-keywords",
        ),
        pytest.param(
            declared(check_options={"overfit": {"seed": 3}}),
            ValueError,
            "Pipeline 'p': check_options['overfit'] must not set seed: the check is run on this pipeline, from the "
            "suite's seed",
            id="check-options-seed",
        ),
    ],
)
def test_invalid_declarations_are_refused_with_the_value(declare, error, message):
    with pytest.raises(error, match=re.escape(message)):
        declare()


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(
            DATA.images,
            "Pipeline 'p': data must be (or return) a TinyImageDataset, (images, labels, class_names), "
            "(inputs, targets), a folder of class folders, a tf.data.Dataset",
            id="images-only",
        ),
        pytest.param(
            (DATA.images.astype(object), DATA.labels, DATA.class_names),
            "data images must be a numeric array of shape (N, height, width, channels); received: dtype object",
            id="object-images",
        ),
        pytest.param(
            (DATA.images, DATA.labels[:-1], DATA.class_names),
            "data labels must be 12 integers, one per image; received: dtype int32, shape (11,)",
            id="short-labels",
        ),
        pytest.param(lambda: (DATA.images[:0], DATA.labels[:0], DATA.class_names), "data holds no images", id="empty"),
        pytest.param(
            (DATA.images[0], DATA.labels, DATA.class_names),
            "Pipeline 'p': data labels must be 16 integers, one per example; received: dtype int32, shape (12,)",
            id="one-3d-image",
        ),
        pytest.param(
            (DATA.images, DATA.labels, None),
            "Pipeline 'p': data class_names must be a list of names, one per class, e.g. ['cat', 'dog']; received: "
            "class_names=None",
            id="no-class-names",
        ),
        pytest.param(
            (DATA.images, DATA.labels, "abc"),
            "Pipeline 'p': data class_names must be a list of names, one per class, e.g. ['cat', 'dog']; received: "
            "class_names='abc'",
            id="class-names-string",
        ),
    ],
)
def test_bad_data_is_named_when_read(data, message):
    pipeline = Pipeline("p", compiled_cnn, data)
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        pipeline.raw_data()


def test_preprocessing_sees_a_read_only_copy_so_raw_images_never_change():
    before = DATA.images.copy()

    def in_place(images):
        images /= 255  # a bug: writes into the caller's array
        return images

    with pytest.raises(ValueError, match="read-only"):
        Pipeline("p", compiled_cnn, DATA, preprocess_train=in_place).train_inputs(DATA.images)
    assert np.array_equal(DATA.images, before)


def test_preprocessing_must_keep_one_input_per_image():
    pipeline = Pipeline("p", compiled_cnn, DATA, preprocess_train=lambda images: images[:1])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "preprocess_train must return one input per image; received 12 images and returned shape (1, 16, 16, 3)"
        ),
    ):
        pipeline.train_inputs(DATA.images)


def test_build_model_must_return_a_compiled_model():
    from pipeline_checks.testing.small_models import small_bn_cnn

    with pytest.raises(ValueError, match="build_model returned an uncompiled model"):
        Pipeline("p", small_bn_cnn, DATA).fresh_model()


def test_the_pipelines_own_errors_name_the_pipeline_and_the_step():
    def broken_build():
        raise RuntimeError("weights file missing")

    with pytest.raises(
        PipelineRunError, match=r"^Pipeline 'p': build_model raised RuntimeError: weights file missing$"
    ) as raised:
        check_overfit(Pipeline("p", broken_build, DATA))
    assert str(raised.value.__cause__) == "weights file missing"  # chained, for the traceback
    # validation_split on one image leaves fit nothing to train on: refused before fit, naming the value
    tiny = (DATA.images[:1], DATA.labels[:1], DATA.class_names)
    with pytest.raises(ValueError, match=r"^Pipeline 'q': fit_kwargs\['validation_split'\]=0.5 leaves 0 of the 1"):
        check_overfit(Pipeline("q", compiled_cnn, tiny, fit_kwargs={"validation_split": 0.5}))


def test_defaults_and_targets():
    pipeline = Pipeline("p", compiled_cnn, DATA, label_encoding="one_hot")
    assert pipeline.preprocess_infer is pipeline.preprocess_train
    assert pipeline.fit_kwargs == {"epochs": 5} and pipeline.batch_size == 32
    assert np.array_equal(pipeline.targets(pipeline.raw_data()), DATA.one_hot_labels)


@pytest.fixture(scope="module")
def pipeline():
    pipeline = small_pipeline("shared")
    yield pipeline
    forget_shared_runs(pipeline)


def test_checks_share_one_training_run_per_pipeline_and_seed(pipeline):
    run = shared_run(pipeline)
    assert shared_run(pipeline) is run
    check_agreement(pipeline), check_overfit(pipeline)
    assert shared_run(pipeline) is run and run.agreements  # the agreement was measured once, kept with the run


@pytest.mark.parametrize(
    "call, error, message",
    [
        pytest.param(
            lambda p: check_agreement("my-pipeline"),
            TypeError,
            "checks take a pipeline_checks.Pipeline",
            id="not-a-pipeline",
        ),
        pytest.param(
            lambda p: check_agreement(p, seed=-1),
            ValueError,
            "seed must be a non-negative integer; received: seed=-1",
            id="negative-seed",
        ),
        pytest.param(
            lambda p: check_overfit(p, target_accuracy=0),
            ValueError,
            "target_accuracy must be a number in (0, 1]; received: target_accuracy=0",
            id="zero-target",
        ),
        pytest.param(
            lambda p: check_agreement(p, tolerance=1.5),
            ValueError,
            "tolerance must be a number in [0, 1); received: tolerance=1.5",
            id="tolerance-above-1",
        ),
    ],
)
def test_bad_check_arguments(pipeline, call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call(pipeline)


def test_raise_if_failed_raises_the_message_and_returns_a_passed_result():
    good = CheckResult("labels", True, "labels in range", pipeline="p")
    assert good.raise_if_failed() is good
    bad = CheckResult("labels", False, "label 3 out of range", "Fix: use 0-based labels.", "p")
    with pytest.raises(
        PipelineCheckFailure,
        match=re.escape("check labels FAILED on pipeline 'p': label 3 out of range\nFix: use 0-based labels."),
    ):
        bad.raise_if_failed()


def test_validation_split_holds_out_the_last_images_as_fit_does():
    images, labels, names = DATA.images, DATA.labels, DATA.class_names
    pipeline = small_pipeline(fit_kwargs={"epochs": 1, "batch_size": 4, "validation_split": 0.25})
    raw, held_out = pipeline.raw_data(), pipeline.raw_validation_data()
    assert (len(raw), len(held_out)) == (9, 3)  # Keras: floor(12 * (1 - 0.25)) images train
    np.testing.assert_array_equal(held_out.images, images[9:])
    x, y = pipeline.training_pairs(raw)
    arguments = pipeline.fit_arguments(x, y, seed=0)
    assert "validation_split" not in arguments and len(arguments["x"]) == 9
    validation_x, validation_y = arguments["validation_data"]
    np.testing.assert_array_equal(validation_y, labels[9:])
    np.testing.assert_array_equal(validation_x, pipeline.train_inputs(images[9:]))
    given = small_pipeline(fit_kwargs={"validation_split": 0.25, "validation_data": (images, labels)})
    assert len(given.raw_data()) == 12  # validation_data wins, as in fit
    assert names == raw.class_names


@pytest.mark.parametrize("split", [1.0, -0.1, "0.1", True])
def test_a_validation_split_outside_0_1_is_refused(split):
    with pytest.raises(ValueError, match=r"fit_kwargs\['validation_split'\] must be a number in \[0, 1\)"):
        small_pipeline(fit_kwargs={"validation_split": split})


def test_a_validation_split_that_leaves_no_training_image_is_refused():
    pipeline = small_pipeline(fit_kwargs={"validation_split": 0.95})
    with pytest.raises(ValueError, match=r"validation_split'\]=0.95 leaves 0 of the 12 images for training"):
        pipeline.raw_data()


@pytest.mark.parametrize("side", ["inputs", "outputs"])
def test_several_inputs_or_several_outputs_with_one_target_array_are_refused_naming_them(side):
    from pipeline_checks.model import compat

    keras = compat.keras()

    def two_headed():
        image = keras.Input((16, 16, 3), name="image")
        extra = keras.Input((2,), name="extra")
        features = keras.layers.Flatten()(image)
        if side == "inputs":
            features = keras.layers.Concatenate()([features, extra])
        classes = keras.layers.Dense(3, activation="softmax", name="classes")(features)
        box = keras.layers.Dense(4, name="box")(features)
        model = keras.Model(
            [image, extra] if side == "inputs" else image, classes if side == "inputs" else [classes, box]
        )
        model.compile(
            "adam",
            "sparse_categorical_crossentropy" if side == "inputs" else ["sparse_categorical_crossentropy", "mse"],
        )
        return model

    names = "'image', 'extra'" if side == "inputs" else "'classes', 'box'"
    with pytest.raises(ValueError, match=rf"^Pipeline 'p': build_model returned a model with 2 {side} \({names}\)"):
        Pipeline("p", two_headed, DATA).fresh_model()
    if side == "outputs":  # its targets per output, as fit takes them: accepted
        targets = {"classes": DATA.labels, "box": np.zeros((len(DATA.labels), 4), np.float32)}
        assert Pipeline("p", two_headed, (DATA.images, targets)).fresh_model().output_names
