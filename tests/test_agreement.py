"""The agreement oracle on small models whose disagreements have known causes."""

import re

import numpy as np
import pytest

from pipeline_checks import PipelineCheckFailure, assert_fit_evaluate_agree, measure_agreement
from pipeline_checks.model import compat
from pipeline_checks.model.compat import keras as get_keras
from pipeline_checks.model.state import VariableSnapshot

keras = get_keras()

# Ten copies of three small one-hot points; a Dense layer with KERNEL classifies them perfectly,
# and Gaussian noise of stddev 1 on the inputs drowns them.
X = np.repeat(np.eye(3, dtype="float32") * 0.05, 10, axis=0)
KERNEL = np.eye(3, dtype="float32") * 200
Y = np.repeat(np.arange(3), 10)


def classifier(*hidden, name="classifier"):
    model = keras.Sequential([keras.Input((3,)), *hidden, keras.layers.Dense(3, activation="softmax")], name=name)
    model.layers[-1].set_weights([KERNEL, np.zeros(3, "float32")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class AlwaysNoisy(keras.layers.Layer):
    """Adds fresh noise at inference too: predict and evaluate see different draws."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed = compat.seed_generator(1)

    def call(self, inputs):
        return inputs + compat.random_normal_like(inputs, stddev=0.2, generator=self.seed)


def test_a_correct_model_agrees_in_every_mode(pc_seed):
    agreement = assert_fit_evaluate_agree(classifier(), (X, Y))
    assert agreement.agrees and agreement.diagnosis == "All modes agree."
    assert {mode: values["accuracy"] for mode, values in agreement.values.items()} == {
        "train-mode": 1.0,
        "evaluate": 1.0,
        "predict": 1.0,
        "recalibrated": 1.0,
    }
    assert agreement.table().splitlines()[0].split() == ["mode", "loss", "accuracy"]


class IgnoresItsWeight(keras.layers.Layer):
    """Holds a weight its output does not use: a NaN there never reaches a metric."""

    def build(self, input_shape):
        self.unused = self.add_weight(shape=(3,), initializer="zeros", name="unused")

    def call(self, inputs):
        return inputs


def test_a_nan_weight_that_inference_hides_is_not_finite(pc_seed):
    layer = IgnoresItsWeight(name="ignores")
    model = classifier(layer)
    layer.unused.assign(np.array([0.0, np.nan, np.inf], "float32"))
    agreement = measure_agreement(model, (X, Y))
    assert agreement.values["evaluate"]["accuracy"] == 1.0 and not agreement.agrees
    assert re.match(
        r"Not finite: model variables hold NaN or Inf: (classifier/)?ignores/unused(:0)?: the modes cannot be compared",
        agreement.diagnosis,
    )


class FlipsInTraining(keras.layers.Layer):
    """Negates its inputs in training mode: a training branch no known training-only layer explains."""

    def call(self, inputs, training=None):
        return -inputs if training else inputs


def without_training(model):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


@pytest.mark.parametrize(
    "layer",
    [keras.layers.GaussianNoise(1.0, name="noise"), keras.layers.Dropout(0.9, name="dropout")],
    ids=["gaussian-noise", "dropout"],
)
def test_training_only_layers_stay_in_inference_in_the_batchnorm_reference(pc_seed, layer):
    agreement = measure_agreement(classifier(layer), (X, Y))
    assert agreement.agrees, str(agreement)
    assert agreement.values["train-mode"]["accuracy"] == agreement.values["evaluate"]["accuracy"] == 1.0
    assert agreement.values["train-all"]["accuracy"] < 0.8  # the same pass with the layer active, as in fit


def test_evaluate_above_fit_is_a_note_that_names_dropout(pc_seed):
    model = without_training(classifier(keras.layers.Dropout(0.9, name="dropout")))
    history = model.fit(X, Y, epochs=1, batch_size=30, verbose=0)  # weights unchanged; fit guesses under dropout
    agreement = measure_agreement(model, (X, Y), history)
    assert agreement.values["fit"]["accuracy"] < 0.8 and agreement.values["evaluate"]["accuracy"] == 1.0
    assert agreement.agrees, str(agreement)
    assert re.search(
        r"Note: evaluate is above fit's epoch average: "
        r"accuracy 1.0000 is 0\.\d+ above fit's 0\.\d+ \(\d+ of 30 samples\); "
        r"fit averages its last epoch while the weights still improve; training-only layers \((classifier/)?dropout\) "
        r"are active in fit \(a training pass with them active gives accuracy 0\.\d+\): not a bug\.",
        agreement.diagnosis,
    ), agreement.diagnosis


@pytest.mark.parametrize("flipped, agrees", [(1, True), (2, False)], ids=["one-sample", "two-samples"])
def test_a_gap_counts_from_two_samples(pc_seed, flipped, agrees):
    # Ten samples without signal (the bias says class 0 in every mode) and `flipped` that
    # FlipsInTraining turns wrong in train-mode: 1 of 11 (0.09 > tolerance 0.05) is noise.
    model = classifier(FlipsInTraining(name="flips"))
    model.layers[-1].set_weights([KERNEL, np.array([1.0, 0.0, 0.0], "float32")])
    x = np.concatenate([np.zeros((10, 3), "float32"), np.eye(3, dtype="float32")[1 : 1 + flipped] * 0.05])
    y = np.concatenate([np.zeros(10, int), np.arange(1, 1 + flipped)])
    agreement = measure_agreement(model, (x, y), recalibrate=False)
    assert agreement.values["evaluate"]["accuracy"] == 1.0
    assert round((1 - agreement.values["train-mode"]["accuracy"]) * len(y)) == flipped
    assert agreement.agrees is agrees, str(agreement)


def test_a_training_branch_no_known_layer_explains_is_a_gap_of_unknown_cause(pc_seed):
    agreement = measure_agreement(classifier(FlipsInTraining(name="flips")), (X, Y))
    assert agreement.values["train-mode"]["accuracy"] == 0.0 and agreement.values["evaluate"]["accuracy"] == 1.0
    assert (
        "Gap: evaluate vs train-mode: accuracy 1.0000 is 1.0000 above train-mode's 0.0000 (30 of 30 samples)."
        in agreement.diagnosis
    )
    assert "Cause unknown" in agreement.diagnosis


def test_findings_are_the_verdict_findings_and_only_gaps_fail(pc_seed):
    """The oracle describes what it finds as every check does: a gap fails, a cause beside it does not."""
    from pipeline_checks.results.verdict import Finding

    agreement = measure_agreement(classifier(FlipsInTraining(name="flips")), (X, Y))
    assert all(isinstance(finding, Finding) for finding in agreement.findings)
    assert [(f.summary.partition(":")[0], f.failure) for f in agreement.findings] == [
        ("Gap", True),
        ("Cause unknown", False),
    ]
    assert not agreement.agrees


def test_predict_and_evaluate_disagreeing_is_its_own_finding(pc_seed):
    agreement = measure_agreement(classifier(AlwaysNoisy()), (X, Y), recalibrate=False)
    # Fresh noise in each: loss and accuracy differ (Keras 2's draws move accuracy more than loss).
    assert re.search(r"Gap: predict vs evaluate: (loss|accuracy) is", agreement.diagnosis), agreement.diagnosis


def test_fit_on_other_inputs_is_told_apart_from_inference_gaps(pc_seed):
    model = without_training(classifier())
    history = model.fit(X, Y, epochs=1, batch_size=30, verbose=0)  # fit: accuracy 1
    shuffled = np.roll(Y, 10)  # inference sees other labels: accuracy 0 in every inference mode
    agreement = measure_agreement(model, (X, shuffled), history)
    assert agreement.values["fit"]["accuracy"] == 1.0 and not agreement.agrees
    assert (
        "Gap: evaluate vs fit: accuracy 0.0000 is 1.0000 below fit's 1.0000 (30 of 30 samples)." in agreement.diagnosis
    )
    assert "Cause: fit saw other inputs, or the weights moved during the epoch" in agreement.diagnosis


def test_batch_size_follows_fits_steps(pc_seed):
    model = classifier(keras.layers.BatchNormalization(name="bn"))
    history = model.fit(X, Y, epochs=1, batch_size=10, verbose=0)
    agreement = measure_agreement(model, (X, Y), history)
    assert agreement.recalibration.batches == 3


def test_measuring_changes_nothing(pc_seed):
    model = classifier(keras.layers.BatchNormalization(), keras.layers.Dropout(0.5))
    model.fit(X, Y, epochs=1, batch_size=10, verbose=0)
    everything = VariableSnapshot.of([*model.variables, *compat.optimizer_variables(model.optimizer)])
    measure_agreement(model, (X, Y))
    assert everything.changed() == []


def test_failure_is_an_assertion_error_with_the_table(pc_seed):
    with pytest.raises(AssertionError) as failure:
        assert_fit_evaluate_agree(classifier(FlipsInTraining()), (X, Y))
    assert isinstance(failure.value, PipelineCheckFailure)
    assert str(failure.value).startswith("Modes disagree on the same 30 samples (tolerance 0.05 absolute on accuracy):")
    assert "\nmode " in str(failure.value) and "\ntrain-mode " in str(failure.value)


@pytest.mark.parametrize(
    "make_model, data, kwargs, error, message",
    [
        (
            lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)], name="raw"),
            (X, Y),
            {},
            ValueError,
            "model 'raw' is not compiled: call model.compile(loss=..., metrics=[...]) first",
        ),
        (lambda: "model", (X, Y), {}, TypeError, "model must be a Keras model; received: str"),
        (
            classifier,
            (X, Y),
            {"tolerance": 1.5},
            ValueError,
            "tolerance must be a number in [0, 1); received: tolerance=1.5",
        ),
        (classifier, X, {}, ValueError, "data has no targets: pass (x, y), or a dataset of (x, y) batches"),
        (classifier, (X, Y[:5]), {}, ValueError, "x and y hold different numbers of samples: 30 and 5"),
        (
            classifier,
            (X, Y),
            {"history": {"loss": [1.0]}},
            ValueError,
            "history must be the History that model.fit returned; received: {'loss': [1.0]}",
        ),
    ],
    ids=["uncompiled", "not-a-model", "tolerance", "no-targets", "length-mismatch", "not-a-history"],
)
def test_invalid_arguments(make_model, data, kwargs, error, message):
    with pytest.raises(error) as raised:
        measure_agreement(make_model(), data, **kwargs)
    assert str(raised.value) == message


# --- Keras reads the logits beneath a sigmoid or softmax head -------------------------------------


def head(activation, loss, from_logits=False, units=3):
    """The one-hot points classified by a Dense head with `activation`, compiled with `loss`."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, activation=activation)], name="head")
    model.layers[-1].set_weights([np.eye(3, units, dtype="float32") * 20, np.zeros(units, "float32")])
    losses = {"categorical": keras.losses.CategoricalCrossentropy, "binary": keras.losses.BinaryCrossentropy}
    model.compile(optimizer="sgd", loss=losses[loss](from_logits=from_logits), metrics=["accuracy"])
    return model


@pytest.mark.skipif(compat.backend() != "tensorflow", reason="Keras reads the logits beneath on TensorFlow only")
def test_a_sigmoid_head_under_categorical_crossentropy_is_named_not_blamed_on_the_data_pipeline(pc_seed):
    """Sigmoid outputs under categorical cross-entropy (keras-team/keras#6421: evaluate's numbers
    and predict's outputs disagree): evaluate scores softmax(logits), predict returns sigmoid(logits)."""
    one_hot = np.eye(3, dtype="float32")[Y]
    agreement = measure_agreement(head("sigmoid", "categorical"), (X, one_hot), recalibrate=False)
    diagnosis = agreement.diagnosis
    assert re.search(r"Gap: predict vs evaluate: loss is", diagnosis), diagnosis
    assert "categorical_crossentropy on a sigmoid output" in diagnosis, diagnosis
    assert "softmax(logits) while predict returns sigmoid(logits)" in diagnosis, diagnosis
    assert "accuracy, read from the outputs, agrees" in diagnosis, diagnosis
    assert "activation='softmax'" in diagnosis and "check_labels" in diagnosis, diagnosis
    assert "data pipeline that differs" not in diagnosis, diagnosis


@pytest.mark.parametrize(
    "activation, loss, from_logits, misfit",
    [
        pytest.param("sigmoid", "categorical", False, "categorical_crossentropy on a sigmoid output", id="sigmoid-cce"),
        pytest.param("softmax", "binary", False, "binary_crossentropy on a softmax output", id="softmax-bce"),
        pytest.param(
            "softmax",
            "categorical",
            True,
            "categorical_crossentropy with from_logits=True on a softmax output",
            id="softmax-from-logits",
        ),
        pytest.param("softmax", "categorical", False, None, id="softmax-cce-fits"),
        pytest.param("sigmoid", "binary", False, None, id="sigmoid-bce-fits"),
        pytest.param(None, "categorical", True, None, id="logits-fit"),
    ],
)
def test_logits_beneath_names_only_a_loss_that_does_not_fit_its_head(activation, loss, from_logits, misfit):
    from pipeline_checks.oracle.logits_beneath import logits_beneath

    found = logits_beneath(head(activation, loss, from_logits))
    expected = misfit if compat.backend() == "tensorflow" else None  # other backends score the outputs
    assert (found and found.misfit) == expected


def test_without_batchnorm_the_table_shows_no_recalibrated_row_and_unknown_causes_name_no_batchnorm(pc_seed):
    from pipeline_checks.oracle.findings import _cause_unknown

    agreement = measure_agreement(classifier(), (X, Y))
    assert "recalibrated" not in agreement.table(), agreement.table()
    unknown = _cause_unknown(agreement.batchnorm, ())
    assert "BatchNorm" not in f"{unknown.detail} {unknown.fix}", unknown


def test_the_headline_names_the_gated_metric_and_a_missing_value_is_a_dash():
    from pipeline_checks.checks.agreement import _headline
    from pipeline_checks.oracle.agreement import _cell

    numbers = {"evaluate_predicted_accuracy": 0.6667, "recalibrated_predicted_accuracy": 1.0}
    numbers.update(worst_bn_drift=2.9, worst_bn_layer="batch_normalization")
    assert _headline(numbers, "predicted_accuracy", batchnorm=True) == (
        "predicted_accuracy evaluate 0.67, recalibrated 1.00; worst BN drift 2.9 (batch_normalization)"
    )  # was "accuracy ; worst BN drift 2.9 (...)": the numbers of a model with no accuracy metric were lost
    assert _headline({"fit_acc": 1.0, "evaluate_acc": 0.5}, "acc", batchnorm=False) == "acc fit 1.00, evaluate 0.50"
    assert _headline({}, "loss", batchnorm=False) == ""
    assert _cell(None, 8) == "       -" and _cell(0.5, 8) == "  0.5000"
