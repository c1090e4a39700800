"""Recorder: a repository's own fit, recorded by one callback, judged by the checks of one run.

Each pipeline below is a row of the detection matrix (tests/broken_pipelines/). Its test fits
the model itself, as a repository's test does, with the recorder as the only callback; the
recorder must then fail exactly the families the matrix row expects among the six it runs.
"""

import random
import re
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from broken_pipelines import data, inference, training
from broken_pipelines.common import DATA, small_pipeline

from pipeline_checks.attach.recorder import Recorder
from pipeline_checks.errors import PipelineCheckFailure
from pipeline_checks.model import compat
from pipeline_checks.run.training import train
from pipeline_checks.testing.datasets import make_tiny_images
from pipeline_checks.testing.small_models import small_bn_cnn

# The families that can judge one recorded fit: those whose @family declares no OWN_FIT.
RECORDED = ["agreement", "frozen_layers", "labels", "overfit", "numerics", "variables_change"]

BROKEN = {
    inference.stale_batchnorm: inference.CASES,  # agreement: the first report, fit without recalibrating BN
    training.frozen_base_not_recompiled: training.CASES,  # frozen_layers and variables_change
    data.one_based_labels: data.CASES,  # labels
    training.huge_learning_rate: training.CASES,  # numerics, overfit, agreement
}


def fit_with_recorder(pipeline, seed: int = 0):
    """What a repository's test does: build, fit with the recorder, finish (here: as the shared run would)."""
    compat.set_random_seed(seed)
    raw = pipeline.raw_data()
    x, y = pipeline.train_inputs(raw.images), pipeline.targets(raw)
    compat.set_random_seed(seed)
    model = pipeline.build_model()
    recorder = Recorder()
    compat.set_random_seed(seed)
    model.fit(x, y, callbacks=[recorder], verbose=0, **pipeline.fit_kwargs)
    if pipeline.after_fit is not None:
        pipeline.after_fit(model, x)
    return model, recorder


def check_arguments(pipeline) -> dict:
    """How the test tells the recorder what fit's inputs were made from; the rest it reads from the fit."""
    return {"preprocess_train": pipeline.preprocess_train, "preprocess_infer": pipeline.preprocess_infer}


def fingerprint(model) -> list[bytes]:
    """Every variable of the model, its optimizer and its metrics, bitwise."""
    variables = [*model.variables, *compat.optimizer_variables(model.optimizer), *compat.metric_variables(model)]
    return [compat.to_numpy(v).tobytes() for v in variables]


@dataclass
class Recorded:
    pipeline: object
    model: object
    recorder: object
    results: list
    before: list  # fingerprints around check()
    after: list

    def result(self, family: str):
        return next(r for r in self.results if r.name == family)


@pytest.fixture(scope="module")
def recorded():
    """`recorded(factory)`: the factory's pipeline fitted with a Recorder and checked, once per module."""
    made = {}

    def get(factory):
        if factory not in made:
            pipeline = factory()
            model, recorder = fit_with_recorder(pipeline)
            before = fingerprint(model)
            results = recorder.check(pipeline.data, **check_arguments(pipeline))
            made[factory] = Recorded(pipeline, model, recorder, results, before, fingerprint(model))
        return made[factory]

    return get


def verdicts(results) -> str:
    return "\n".join(f"  {r.name}: {'passed' if r.passed else 'FAILED'}: {r.summary}" for r in results)


# --- the callback ------------------------------------------------------------------------------


def test_recorder_is_a_callback_of_the_installed_keras():
    recorder = Recorder()
    assert isinstance(recorder, compat.keras().callbacks.Callback)
    assert Recorder is type(Recorder())  # one class, created once
    assert recorder.fits == 0


def test_importing_the_module_imports_no_keras():
    code = (
        "import sys, pipeline_checks.attach.recorder, pipeline_checks.run.recording; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'tf_keras') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_the_recorder_keeps_its_old_import_paths():
    import pipeline_checks
    from pipeline_checks.run import recorder as moved

    assert pipeline_checks.Recorder is Recorder and moved.Recorder is Recorder
    assert Recorder.__module__ == "pipeline_checks.attach.recorder" and Recorder.__qualname__ == "Recorder"


def _per_class_logger():
    """A callback of the repository's that adds one value per class to each epoch's logs (a
    per-class recall, say), for the callbacks after it: the recording callback among them."""
    keras = compat.keras()

    class PerClassLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["recall_per_class"] = np.array([0.5, 0.25, 1.0])
            logs["note"] = "per class"

    return PerClassLogger()


def test_the_shared_run_and_the_recorder_keep_the_scalar_logs_of_a_fit_that_logs_a_vector():
    """One recording callback, one rule: a log that is no number is left out, and fit never fails."""
    pipeline = small_pipeline(
        "per-class-logs", fit_kwargs={"epochs": 2, "batch_size": 6, "callbacks": [_per_class_logger()]}
    )
    run = train(pipeline)
    assert set(run.first_epoch_logs) == {"loss", "accuracy"}
    assert len(run.batch_losses) == 4 and len(run.after_first_epoch) == len(run.weights)

    model, recorder = _tiny_model(), Recorder()
    x = pipeline.train_inputs(DATA.images)
    model.fit(x, DATA.labels, epochs=2, batch_size=6, callbacks=[_per_class_logger(), recorder], verbose=0)
    assert set(recorder.record.first_epoch_logs) == set(recorder.record.logged.history) == {"loss", "accuracy"}
    assert recorder.record.logged.epoch == [0, 1] and len(recorder.record.batch_losses) == 4


# --- a correct fit -------------------------------------------------------------------------------


def test_all_six_pass_on_a_correct_fit(recorded):
    results = recorded(small_pipeline).results
    assert [r.name for r in results] == RECORDED
    assert all(r.passed for r in results), verdicts(results)


def test_results_read_the_recorded_fit(recorded):
    correct = recorded(small_pipeline)
    assert correct.recorder.fits == 1
    assert (
        correct.result("numerics").summary == "inputs, loss, weights and initial gradients finite over 45 steps of fit"
    )
    assert correct.result("overfit").numbers["epochs"] == 15
    assert correct.result("labels").numbers["initial_loss"] == pytest.approx(
        correct.result("numerics").numbers["initial_loss"]
    )
    assert all(r.pipeline == correct.model.name for r in correct.results)


def test_the_data_can_be_the_dataset_fit_trained_on(recorded):
    """`recorder.check(ds)`: a tf.data pipeline of model inputs is read as the Pipeline reads it."""
    tf = pytest.importorskip("tensorflow")
    correct = recorded(small_pipeline)
    inputs = correct.pipeline.train_inputs(DATA.images)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, DATA.labels)).batch(4)
    results = correct.recorder.check(dataset)
    assert all(r.passed for r in results), verdicts(results)
    assert correct.result("labels").summary == next(r for r in results if r.name == "labels").summary


def test_check_leaves_the_model_unchanged(recorded):
    correct = recorded(small_pipeline)
    assert correct.after == correct.before


def _next_draws() -> dict:
    """The next value of every generator keras.utils.set_random_seed seeds."""
    draws = {"random": random.random(), "numpy": float(np.random.random())}
    if compat.is_keras3():  # keras.random without a seed draws from Keras' global SeedGenerator
        draws["keras"] = compat.to_numpy(compat.keras().random.uniform((3,))).tolist()
    if "tensorflow" in sys.modules:  # TensorFlow's global seed and its next operation seed
        from tensorflow.python.framework import random_seed

        draws["tensorflow"] = random_seed.get_seed(None)
    return draws


def test_check_leaves_the_random_generators_as_they_were(recorded):
    correct = recorded(small_pipeline)
    compat.keras().utils.set_random_seed(123)
    expected = _next_draws()
    compat.keras().utils.set_random_seed(123)
    correct.recorder.check(correct.pipeline.data, **check_arguments(correct.pipeline))  # the six families
    assert _next_draws() == expected


# --- broken fits ---------------------------------------------------------------------------------


def _case(factory):
    return next(case for case in BROKEN[factory] if case.pipeline is factory)


@pytest.mark.parametrize("factory", list(BROKEN), ids=lambda factory: factory().name)
def test_a_broken_fit_fails_the_families_its_row_expects(recorded, factory):
    case = _case(factory)
    if case.raises:
        pytest.skip(f"fit raises on {compat.backend()}: {case.why}")
    found = recorded(factory)
    expected = {name: cause for name, cause in case.causes.items() if name in RECORDED}
    failing = {r.name for r in found.results if not r.passed}
    assert failing == set(expected), f"{case.bug}: expected failures {sorted(expected)}\n{verdicts(found.results)}"
    for name, cause in expected.items():
        assert re.search(cause, str(found.result(name))), (
            f"{name} does not name the cause {cause!r}:\n{found.result(name)}"
        )
    assert found.after == found.before


def test_assert_ok_raises_with_every_failure(recorded):
    case = _case(training.frozen_base_not_recompiled)
    if case.raises or "frozen_layers" not in case.causes:
        pytest.skip(f"{case.bug} is not caught on {compat.backend()}: {case.why}")
    found = recorded(training.frozen_base_not_recompiled)
    families = ["frozen_layers", "variables_change", "labels"]
    with pytest.raises(PipelineCheckFailure) as raised:
        found.recorder.assert_ok(found.pipeline.data, families=families, **check_arguments(found.pipeline))
    message = str(raised.value)
    assert message.startswith(f"2 of 3 checks failed on the recorded fit of {found.model.name!r}:")
    assert "check frozen_layers FAILED" in message and "check variables_change FAILED" in message
    assert "check labels" not in message


def test_assert_ok_returns_the_results_when_all_pass(recorded):
    correct = recorded(small_pipeline)
    results = correct.recorder.assert_ok(DATA, families="variables_change", **check_arguments(correct.pipeline))
    assert [r.name for r in results] == ["variables_change"] and results[0].passed


# --- what check() refuses ----------------------------------------------------------------------


def test_check_before_fit_says_to_fit_first():
    with pytest.raises(RuntimeError, match=r"pass the recorder to fit first.*received: no fit recorded"):
        Recorder().check(DATA)


@pytest.mark.parametrize(
    "families, message",
    [
        (
            ["labels", "lables"],
            r"'lables' is no check; a Recorder runs agreement, frozen_layers, .*"
            r"received: families=\['labels', 'lables'\]",
        ),
        (["determinism"], r"determinism cannot judge a recorded fit: determinism fits twice"),
        ([], r"families must be check names among"),
        (3, r"families must be check names among .*received: families=3"),
    ],
    ids=["unknown", "needs-its-own-fit", "empty", "not-names"],
)
def test_bad_family_names_are_refused(recorded, families, message):
    recorder = recorded(small_pipeline).recorder
    with pytest.raises(ValueError, match=message):
        recorder.check(DATA, families=families)


def test_options_for_no_family_are_refused(recorded):
    recorder = recorded(small_pipeline).recorder
    with pytest.raises(TypeError, match=r"unexpected keyword arguments preprocess: .*received: preprocess="):
        recorder.check(DATA, preprocess=lambda images: images)
    with pytest.raises(ValueError, match=r"options given for overfit, which this check does not run"):
        recorder.check(DATA, families=["labels"], overfit={"target_accuracy": 0.9})


def test_options_are_the_pipelines_check_options(recorded):
    """Recorder.check's options become the recorded pipeline's check_options, resolved by @family."""
    correct = recorded(small_pipeline)
    with pytest.raises(ValueError, match=r"check_options\['overfit'\]: target_accuracy must be a number in \(0, 1\]"):
        correct.recorder.check(
            DATA, families=["overfit"], overfit={"target_accuracy": 5}, **check_arguments(correct.pipeline)
        )


@pytest.mark.parametrize(
    "images, batch_size, message",
    [
        (
            make_tiny_images(classes=3, per_class=8, size=16, seed=0),
            4,
            r"24 images make 6 batches of 4, but fit ran 3 steps per epoch",
        ),
        (
            (DATA.images[:2], DATA.labels[:2], DATA.class_names),
            None,
            r"2 images make 2 batches of 1, but fit ran 3 steps per epoch",
        ),
    ],
    ids=["more-images", "fewer-images-than-steps"],
)
def test_data_of_another_size_is_refused(recorded, images, batch_size, message):
    correct = recorded(small_pipeline)
    with pytest.raises(ValueError, match=message):
        correct.recorder.check(images, batch_size=batch_size, **check_arguments(correct.pipeline))


# --- fits that are not one plain fit ---------------------------------------------------------------


def _tiny_model():
    keras = compat.keras()
    model = small_bn_cnn((16, 16, 3), classes=3, blocks=1, filters=4)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_last_of_several_fits_is_judged_with_a_warning():
    model, recorder = _tiny_model(), Recorder()
    x = DATA.images.astype("float32") / 255.0
    model.fit(x, DATA.labels, epochs=1, batch_size=4, callbacks=[recorder], verbose=0)
    model.fit(x, DATA.labels, epochs=2, batch_size=6, callbacks=[recorder], verbose=0)
    with pytest.warns(UserWarning, match=r"Recorder saw 2 fits; the checks judge the last one"):
        [result] = recorder.check(DATA, families=["variables_change"], preprocess_train=lambda images: images / 255.0)
    assert recorder.fits == 2
    assert result.passed and "(4 steps)" in result.summary  # 2 epochs of 2 batches of 6: the second fit


def _subclassed_model():
    """A subclassed classifier without get_config: keras.models.clone_model cannot copy it."""
    keras = compat.keras()

    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.flatten, self.dense = keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")

        def call(self, inputs):
            return self.dense(self.flatten(inputs))

        def get_config(self):
            raise NotImplementedError("Classifier has no config")

    model = Classifier()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_labels_says_when_the_model_cannot_be_rebuilt_untrained():
    """labels needs the model untrained: where it cannot be cloned, labels says so, and does not pass."""
    model, recorder = _subclassed_model(), Recorder()
    x = DATA.images.astype("float32") / 255.0
    model(x[:1])  # built before fit, so that fit starts from weights the recorder can see
    model.fit(x, DATA.labels, epochs=1, batch_size=4, callbacks=[recorder], verbose=0)
    [result] = recorder.check(DATA, families=["labels"], preprocess_train=lambda images: images / 255.0)
    assert not result.passed and result.numbers == {"not_applicable": True}
    assert result.summary.startswith("cannot run on the recorded fit: the model cannot be cloned untrained")
    assert "families=['agreement', 'frozen_layers', 'overfit', 'numerics', 'variables_change']" in result.details


@pytest.mark.skipif(compat.is_keras3(), reason="Keras 3 builds the model before fit starts")
def test_a_model_built_inside_fit_is_refused():
    model, recorder = _subclassed_model(), Recorder()
    model.fit(
        DATA.images.astype("float32") / 255.0, DATA.labels, epochs=1, batch_size=4, callbacks=[recorder], verbose=0
    )
    with pytest.raises(ValueError, match=r"had no weights when fit started.*build it before fit"):
        recorder.check(DATA, preprocess_train=lambda images: images / 255.0)


def test_an_unfinished_fit_is_refused():
    keras = compat.keras()

    class Stop(Exception):
        pass

    class StopAtFirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise Stop

    model, recorder = _tiny_model(), Recorder()
    with pytest.raises(Stop):
        model.fit(
            np.zeros((4, 16, 16, 3), "float32"),
            np.zeros(4, "int32"),
            epochs=1,
            callbacks=[recorder, StopAtFirstStep()],
            verbose=0,
        )
    with pytest.raises(RuntimeError, match=r"needs a finished fit: the last fit never reached on_train_end"):
        recorder.check(DATA)
