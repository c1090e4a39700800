"""check_labels on regression pipelines: float targets judged against the output's range and width and the loss."""

import functools

import numpy as np
import pytest
from broken_pipelines import regression, regression_labels

from pipeline_checks import Pipeline
from pipeline_checks.checks import check_labels, target_findings
from pipeline_checks.model import compat

NOT_CLASSES = (
    "  class coverage, validation's class names and order, and label permutation not judged: the targets are float "
    "values to regress (no class_names), not class indices, so there are no classes to cover or to number alike in "
    "both splits"
)
ROWS = regression.ROWS
MPG = regression.MPG
PAIRS = np.stack([regression.MPG, regression.MPG / 10 - 2], axis=1)  # two values regressed together


def mlp(units=1, activation=None, loss="mse"):
    """A small MLP on the fuel rows: its normalizer, one hidden layer, `units` outputs."""
    keras = compat.keras()
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(ROWS)
    model = keras.Sequential(
        [
            keras.Input((regression.FEATURES,)),
            normalizer,
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    model.compile(optimizer="adam", loss=loss)
    return model


def tabular(name, targets=MPG, **model):
    return Pipeline(name=name, build_model=functools.partial(mlp, **model), data=(ROWS, np.asarray(targets)))


# -- the correct rows ----------------------------------------------------------------------


def test_the_cnn_row_passes_with_what_was_judged_in_numbers():
    pipeline = regression.regression_cnn()
    targets = pipeline.raw_data().labels
    result = check_labels(pipeline)
    assert result.passed, str(result)
    assert result.summary == (
        f"12 float targets in [{targets.min():.3g}, {targets.max():.3g}] (mean 0, std 1), 1 per example; the linear "
        "output can reach them; loss mse"
    )
    assert NOT_CLASSES in result.details
    assert "loss at initialization not checked: ln C is where a classifier's cross-entropy starts" in result.details
    numbers = result.numbers
    assert (numbers["task"], numbers["targets"], numbers["targets_per_example"]) == ("regression", 12, 1)
    assert (numbers["output_width"], numbers["output_activation"], numbers["targets_out_of_reach"]) == (1, "linear", 0)


def test_the_fuel_tutorial_passes_and_names_its_validation_targets():
    result = check_labels(regression.fuel_efficiency())
    assert result.passed, str(result)
    low, high = float(MPG[:128].min()), float(MPG[:128].max())
    assert result.summary.startswith(f"128 float targets in [{low:.3g}, {high:.3g}] (mean ")
    assert "1 per example; the linear output can reach them; loss mean_absolute_error; validation: 32 targets" in (
        result.summary
    )


# -- the broken rows -----------------------------------------------------------------------


def _counted(row):
    """The row's training targets: how many lie below 0, above 1, and their range as the message shows it."""
    targets = row().raw_data().labels
    return int((targets < 0).sum()), int((targets > 1).sum()), f"[{targets.min():.4g}, {targets.max():.4g}]"


def test_the_sigmoid_row_counts_the_targets_out_of_reach_on_each_side():
    below, above, span = _counted(regression_labels.cnn_sigmoid_output)
    assert below and above  # standardized targets: some on each side of [0, 1]
    result = check_labels(regression_labels.cnn_sigmoid_output())
    assert result.summary == f"a sigmoid output cannot reach {below + above} of 12 targets", str(result)
    assert (
        f"the last layer's sigmoid gives values [0, 1], but {below + above} of 12 float targets lie outside "
        f"({below} below 0 and {above} above 1; targets in {span}, mean 0)"
    ) in result.details
    assert (
        "use a linear output (drop activation='sigmoid' from the last layer) for values on any scale; or scale "
        "the targets into [0, 1] ((y - min) / (max - min), with the training set's min and max)"
    ) in result.details
    assert NOT_CLASSES in result.details  # the classification parts still say why they do not apply
    assert result.numbers["targets_out_of_reach"] == below + above


def test_the_relu_row_counts_the_targets_below_0():
    below, _, span = _counted(regression_labels.cnn_relu_output)
    result = check_labels(regression_labels.cnn_relu_output())
    assert result.summary == f"a relu output cannot reach {below} of 12 targets", str(result)
    assert f"but {below} of 12 float targets lie outside ({below} below 0; targets in {span}" in result.details
    assert "where the relu's gradient is 0: the unit can die and predict one constant" in result.details


def test_the_binary_crossentropy_row_counts_the_targets_outside_0_1():
    targets = regression_labels.fuel_binary_crossentropy().raw_data().labels
    result = check_labels(regression_labels.fuel_binary_crossentropy())
    assert result.summary == "binary_crossentropy on 128 of 128 targets outside [0, 1]", str(result)
    span = f"[{targets.min():.4g}, {targets.max():.4g}]"
    assert f"reads each target y as a probability, but 128 float targets in {span} are values" in result.details
    assert "so the loss turns negative" in result.details
    # Keras on torch computes it with torch's binary_cross_entropy, which refuses these targets (a RuntimeError).
    assert (
        "fit reports a falling loss (Keras on torch refuses such targets at the first step instead: 'all elements "
        "of target should be between 0 and 1')"
    ) in result.details
    assert (
        "compile with a regression loss (loss='mean_squared_error', 'mean_absolute_error' or 'huber') on a linear "
        "output"
    ) in result.details


def test_the_three_output_row_names_the_broadcast():
    result = check_labels(regression_labels.fuel_three_outputs())
    assert result.summary == "the model outputs 3 values per example for 1 target", str(result)
    assert (
        "fit receives targets of shape (128, 1) but the last layer has 3 units: Keras broadcasts mean_absolute_error "
        "over the 3 outputs without an error"
    ) in result.details
    assert "build the last layer with 1 unit (Dense(1))" in result.details


# -- the output's range --------------------------------------------------------------------


@pytest.mark.parametrize(
    "activation, targets, summary",
    [
        ("tanh", MPG, "a tanh output cannot reach 160 of 160 targets"),
        ("softplus", MPG - 20, None),  # the count depends on the data: checked by its prefix
        ("exponential", regression.BRIGHTNESS[:10].repeat(16), None),
    ],
)
def test_bounded_outputs_fail_on_targets_they_cannot_reach(activation, targets, summary):
    targets = np.asarray(targets, np.float32)
    result = check_labels(tabular(f"{activation}-output", targets=targets, activation=activation))
    missed = target_findings.outside(targets, target_findings.OUTPUT_RANGES[activation])
    assert missed > 0
    assert result.summary == (summary or f"a {activation} output cannot reach {missed} of 160 targets"), str(result)
    assert result.numbers["targets_out_of_reach"] == missed


def test_a_bounded_output_on_targets_in_its_range_passes_and_says_its_range():
    scaled = ((MPG - MPG.min()) / (MPG.max() - MPG.min())).astype(np.float32)  # min-max: 0.0 and 1.0 included
    result = check_labels(tabular("sigmoid-on-scaled", targets=scaled, activation="sigmoid"))
    assert result.passed, str(result)
    assert "1 per example; the sigmoid output ([0, 1]) can reach them; loss mse" in result.summary


def test_a_softmax_over_one_unit_fails_on_values_whatever_their_range():
    scaled = ((MPG - MPG.min()) / (MPG.max() - MPG.min())).astype(np.float32)
    result = check_labels(tabular("softmax-one-unit", targets=scaled, activation="softmax"))
    assert result.summary == "a softmax over the single output unit: the model outputs 1.0 for every example"
    assert "drop the activation of the last layer (Dense(1), a linear output)" in result.details


# -- a cross-entropy on values -------------------------------------------------------------


def test_categorical_crossentropy_on_one_unit_names_its_loss_of_zero():
    result = check_labels(tabular("cce-on-values", loss="categorical_crossentropy"))
    assert result.summary == "categorical_crossentropy on float targets that are values, not class labels"
    assert "over one unit that gives 1 for every example: the loss, -y log 1, is 0 whatever the 160 float targets" in (
        result.details
    )


def test_sparse_crossentropy_on_values_names_the_cast_to_class_indices():
    result = check_labels(tabular("sparse-on-values", loss="sparse_categorical_crossentropy"))
    assert result.summary == "sparse_categorical_crossentropy on float targets that are values, not class labels"
    fractional = MPG[MPG != np.round(MPG)]
    cast = f"{fractional[0]:.4g} becomes class {int(fractional[0])}"
    assert (
        f"{fractional.size} of them are not whole ({cast}), and indices outside 0..0 have no output" in result.details
    )


def test_binary_crossentropy_from_logits_on_values_names_no_refusal_by_torch():
    # On logits Keras on torch calls binary_cross_entropy_with_logits, which takes any target (loss -9.03 for
    # target 20 on logit 0.5): fit trains there too.
    loss = compat.keras().losses.BinaryCrossentropy(from_logits=True)
    result = check_labels(tabular("bce-logits-on-values", loss=loss))
    assert result.summary == "binary_crossentropy on 160 of 160 targets outside [0, 1]", str(result)
    assert "fit reports a falling loss" in result.details
    assert "Keras on torch refuses" not in result.details


def test_binary_crossentropy_on_targets_in_0_1_reads_them_as_probabilities():
    scaled = ((MPG - MPG.min()) / (MPG.max() - MPG.min())).astype(np.float32)
    result = check_labels(tabular("bce-on-probabilities", targets=scaled, activation="sigmoid", loss="bce"))
    assert result.passed, str(result)
    assert "binary_crossentropy on float targets in [0, 1]: read as probabilities" in result.details
    assert "from_logits not judged: the outputs are values to regress" in result.details


def test_categorical_crossentropy_on_soft_label_rows_passes():
    rng = np.random.default_rng(0)
    soft = rng.dirichlet([1.0, 1.0, 1.0], 160).astype(np.float32)
    result = check_labels(
        tabular("soft-labels", targets=soft, units=3, activation="softmax", loss="categorical_crossentropy")
    )
    assert result.passed, str(result)
    assert "categorical_crossentropy on 3-column rows that each sum to 1: read as soft labels" in result.details


# -- (N, k) targets: k values regressed together --------------------------------------------


def test_two_values_per_example_on_two_outputs_pass():
    result = check_labels(tabular("two-values", targets=PAIRS, units=2))
    assert result.passed, str(result)
    assert "320 float targets in [" in result.summary and "2 per example; the linear output" in result.summary


@pytest.mark.parametrize(
    "units, effect",
    [
        (1, "Keras broadcasts the one output against the 2 target columns without an error: it learns one number"),
        (3, "Keras raises 'Incompatible shapes' at the first step (3 outputs against 2 target columns)"),
    ],
)
def test_two_values_per_example_on_another_width_fail(units, effect):
    result = check_labels(tabular("two-values-width", targets=PAIRS, units=units))
    assert result.summary == f"the model outputs {units} values per example for 2 targets"
    assert effect in result.details
    assert "build the last layer with 2 units, one per target column (Dense(2))" in result.details


@pytest.mark.parametrize(
    "validation",
    [{"fit_kwargs": {"validation_split": 0.25}}, {"validation_data": (ROWS[:40], PAIRS[:40])}],
    ids=["validation_split", "validation_data"],
)
def test_two_values_per_example_with_validation_pass(validation):
    pipeline = Pipeline(
        name="two-values-validated", build_model=functools.partial(mlp, units=2), data=(ROWS, PAIRS), **validation
    )
    result = check_labels(pipeline)
    assert result.passed, str(result)
    assert "; validation: 80 targets in [" in result.summary  # 40 examples x 2 values


def test_three_outputs_on_flat_targets_say_how_each_keras_treats_them():
    result = check_labels(tabular("three-on-flat", units=3))
    assert result.summary == "the model outputs 3 values per example for 1 target"
    assert (
        "fit receives targets of shape (160,) but the last layer has 3 units: Keras 2 broadcasts (Keras 3 raises"
        in (result.details)
    )


@pytest.mark.parametrize("loss", ["mse", "binary_crossentropy", "categorical_crossentropy", "huber", "mape"])
def test_no_loss_raises_on_two_values_per_example(loss):
    result = check_labels(tabular(f"two-values-{loss}", targets=PAIRS, units=2, loss=loss))
    assert result.passed is (loss in ("mse", "huber", "mape")), str(result)


# -- the helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bounds, text",
    [
        ((0.0, 1.0), "[0, 1]"),
        ((-1.0, 1.0), "[-1, 1]"),
        ((0.0, np.inf), ">= 0"),
        ((-1.0, np.inf), "> -1"),
        ((-np.inf, 0.0), "<= 0"),
        ((-np.inf, np.inf), "any value"),
    ],
)
def test_range_text(bounds, text):
    assert target_findings.range_text(bounds) == text


def test_targets_on_a_bound_are_reached_and_not_finite_ones_are_not_counted():
    values = np.array([0.0, 1.0, 1.0000001, 1.01, -0.5, np.nan], np.float32)
    assert target_findings.outside(values, (0.0, 1.0)) == 2
    stats = target_findings.TargetStats.of(values)
    assert (stats.not_finite, stats.low, stats.per_example) == (1, -0.5, 1)


def test_not_finite_targets_are_noted():
    targets = MPG.copy()
    targets[3] = np.nan
    result = check_labels(tabular("nan-target", targets=targets))
    assert "1 of 160 targets are NaN or Inf (left out of the range above)" in result.details
