"""Regression baselines: a change that every invariant check accepts still moves the fingerprint.

One correct pipeline (a small BatchNorm CNN with a flip augmentation layer) is recorded, then
changed six ways that each pass the nine checks; each change must move a named figure beyond
its tolerance, and a refactor that computes the same thing must move none.
"""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm
from pipeline_checks.baselines.files import Baseline, baseline_file, environment_key
from pipeline_checks.baselines.fingerprint import fingerprint
from pipeline_checks.baselines.outcome import compared
from pipeline_checks.baselines.tolerances import Tolerance, compare, parse_tolerances, tolerance_for
from pipeline_checks.checks import all_checks
from pipeline_checks.model import compat, devices
from pipeline_checks.run.training import forget_shared_runs, shared_run
from pipeline_checks.testing.small_models import small_bn_cnn

PHOTOS = make_tiny_images(classes=3, per_class=2, size=16, kind="photos")


def build(optimizer=("Adam", 0.01), blocks=2, flip="horizontal"):
    keras = compat.keras()
    name, rate = optimizer
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.RandomFlip(flip), small_bn_cnn((16, 16, 3), blocks=blocks)]
    )
    model.compile(
        optimizer=getattr(keras.optimizers, name)(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def scaled(images):
    return images / np.float32(255)


def pipeline(name="cnn", data=PHOTOS, preprocess=scaled, **model):
    return Pipeline(
        name=name,
        build_model=lambda: build(**model),
        data=data,
        preprocess_train=preprocess,
        fit_kwargs={"epochs": 15, "batch_size": 6},
        after_fit=lambda m, x: recalibrate_batchnorm(m, x, batch_size=6),
    )


def reversed_classes(data):
    """The same images and classes, with the class list (and so every label) in the other order."""
    return dataclasses.replace(
        data, labels=len(data.class_names) - 1 - data.labels, class_names=tuple(reversed(data.class_names))
    )


# A refactor: renamed functions, the model assembled through a helper; the same computation.
def _to_unit_range(pixels):
    return np.true_divide(pixels, np.float32(255))


def _assemble_classifier():
    return build(optimizer=("Adam", 0.01), blocks=2, flip="horizontal")


CHANGES = {
    "learning rate x2": (lambda: pipeline(optimizer=("Adam", 0.02)), "loss.epoch_"),
    "optimizer swapped": (lambda: pipeline(optimizer=("RMSprop", 0.01)), "loss.epoch_"),
    "augmentation changed": (lambda: pipeline(flip="horizontal_and_vertical"), "loss.epoch_"),
    "class order changed": (lambda: pipeline(data=reversed_classes(PHOTOS)), "data.classes"),
    "a layer dropped": (lambda: pipeline(blocks=1), "params.total"),
    # BatchNorm after the first convolution absorbs an affine rescale at initialization: the curve moves.
    "preprocessing scale changed": (
        lambda: pipeline(preprocess=lambda images: images / np.float32(127.5) - 1),
        "loss.epoch_",
    ),
}


def checked_fingerprint(made: Pipeline) -> dict:
    """Run the nine checks (each must pass), then fingerprint the run they shared."""
    numbers = {}
    for family, check in all_checks().items():
        result = check(made, seed=0)
        assert result.passed, str(result)
        numbers[family] = result.to_dict()["numbers"]
    figures = fingerprint(shared_run(made, 0), numbers)
    forget_shared_runs(made)
    return figures


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The unchanged pipeline's baseline, written to and read back from its file."""
    path = baseline_file(tmp_path_factory.mktemp("baselines"), "cnn", environment_key())
    Baseline("cnn", environment_key(), 0, checked_fingerprint(pipeline()), {"keras": compat.keras_version()}).write(
        path
    )
    return path


def test_an_unchanged_pipeline_reproduces_its_baseline_bit_for_bit(recorded):
    baseline = Baseline.read(recorded)
    again = checked_fingerprint(pipeline())
    assert again == baseline.figures  # the YAML round trip keeps every float exactly
    result = compared(pipeline(), baseline, recorded, 0, again)
    assert result.passed, str(result)
    assert result.numbers["moved"] == 0 and result.numbers["figures"] == len(again) > 40


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_the_nine_checks_accept_moves_a_named_figure(recorded, change):
    make, figure = CHANGES[change]
    changed = make()
    result = compared(changed, Baseline.read(recorded), recorded, 0, checked_fingerprint(changed))
    assert not result.passed
    assert figure in result.summary or figure in result.details
    assert f'--pc-update-baselines -k "[{changed.name}]"' in result.details
    assert "figure" in result.details and "tolerance" in result.details  # the table's header


def test_a_refactor_with_the_same_computation_passes(recorded):
    refactored = Pipeline(
        name="cnn",
        build_model=_assemble_classifier,
        data=PHOTOS,
        preprocess_train=_to_unit_range,
        fit_kwargs={"batch_size": 6, "epochs": 15},
        after_fit=lambda m, x: recalibrate_batchnorm(m, x, batch_size=6),
    )
    result = compared(refactored, Baseline.read(recorded), recorded, 0, checked_fingerprint(refactored))
    assert result.passed, str(result)


def test_from_another_machine_only_what_training_grows_is_excused(recorded):
    """Another CPU can differ in a kernel's last bit, which training grows: a trained figure that
    moved is reported, not failed; one fixed before training still fails."""
    here = devices.machine()
    elsewhere = dataclasses.replace(Baseline.read(recorded), machine="Another CPU, avx2, 8 CPUs")
    faster = pipeline(optimizer=("Adam", 0.02))
    figures = checked_fingerprint(faster)
    assert not compared(faster, dataclasses.replace(elsewhere, machine=here), recorded, 0, figures, machine=here).passed
    result = compared(faster, elsewhere, recorded, 0, figures, machine=here)
    assert result.passed, str(result)
    assert result.numbers["moved_on_another_machine"] > 0 and result.numbers["moved"] == 0
    assert "recorded on another machine (Another CPU, avx2, 8 CPUs; this one: " in result.details
    assert "loss.epoch_" in result.details and '--pc-update-baselines -k "[cnn]"' in result.details

    reordered = pipeline(data=reversed_classes(PHOTOS))
    result = compared(reordered, elsewhere, recorded, 0, checked_fingerprint(reordered), machine=here)
    assert not result.passed and "data.classes" in result.summary


def test_the_machine_travels_with_the_file(recorded, tmp_path):
    baseline = dataclasses.replace(Baseline.read(recorded), machine=devices.machine())
    baseline.write(tmp_path / "cnn.yml")
    assert Baseline.read(tmp_path / "cnn.yml") == baseline
    assert Baseline.read(recorded).machine == ""  # written without one: compared as from another machine


def test_another_seed_is_named_with_the_way_to_pin_it(recorded):
    result = compared(pipeline(), Baseline.read(recorded), recorded, 3, {"loss.initial": 1.0})
    assert not result.passed
    assert "recorded from seed 0, this run trained from seed 3" in result.summary
    assert "--pc-seed 0" in result.details


def build_with_acc():
    """The CNN, its accuracy logged as "acc" (as Keras 2 logs metrics=["acc"])."""
    keras = compat.keras()
    model = build()
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="acc")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=[accuracy])
    return model


def test_the_target_epoch_is_the_one_check_overfit_reports_on_the_curve_and_target_it_reads():
    made = dataclasses.replace(
        pipeline("cnn-acc"), build_model=build_with_acc, check_options={"overfit": {"target_accuracy": 0.5}}
    )
    result = all_checks()["overfit"](made, seed=0)
    figures = fingerprint(shared_run(made, 0))
    forget_shared_runs(made)
    assert result.numbers["target"] == 0.5 and "fit reached acc 0.5 at epoch" in result.summary, str(result)
    assert figures.get("target_epoch") == result.numbers["reached_at_epoch"]


def test_tolerances_absorb_noise_and_catch_changes():
    baseline = {
        "loss.epoch_1": 1.0,
        "fit.accuracy": 0.75,
        "params.total": 899,
        "predictions.class": [0, 1, 2],
        "predictions.output": [[0.9, 0.1]],
        "checks.overfit.reached_at_epoch": 2,
        "checks.numerics.last_loss": 0.1,
    }
    noise = {
        "loss.epoch_1": 1.005,
        "fit.accuracy": 0.76,
        "params.total": 899,
        "predictions.class": [0, 1, 2],
        "predictions.output": [[0.91, 0.09]],
        "checks.overfit.reached_at_epoch": 2,
        "checks.numerics.last_loss": 0.105,
    }
    assert compare(baseline, noise) == []
    moved = {
        "loss.epoch_1": 1.02,
        "fit.accuracy": 0.8,
        "params.total": 900,
        "predictions.class": [0, 2, 2],
        "predictions.output": [[0.8, 0.2]],
        "checks.overfit.reached_at_epoch": 3,
        "checks.numerics.last_loss": 0.2,
    }
    assert [d.figure for d in compare(baseline, moved)] == list(baseline)


def test_a_check_s_figures_measured_on_one_side_only_are_listed_not_failed():
    departures = compare(
        {"loss.initial": 1.0, "checks.labels.classes": 3}, {"loss.initial": 1.0, "checks.numerics.last_loss": 0.5}
    )
    assert [(d.figure, d.moved, d.difference) for d in departures] == [
        ("checks.labels.classes", False, "not measured now"),
        ("checks.numerics.last_loss", False, "new, not in baseline"),
    ]


def test_overrides_come_before_the_defaults_and_match_patterns():
    overrides = parse_tolerances({"loss.*": {"relative": 0.1}, "predictions.class": {"absolute": 1}}, "here")
    assert tolerance_for("loss.epoch_3", 0.5, overrides) == Tolerance(relative=0.1)
    assert tolerance_for("loss.epoch_3", 0.5) == Tolerance(absolute=1e-6, relative=0.01)
    assert tolerance_for("predictions.class", [0], overrides) == Tolerance(absolute=1)
    assert tolerance_for("checks.labels.classes", 3).exact and not tolerance_for("checks.numerics.last_loss", 0.1).exact


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([1], "expected a table of figure -> tolerance"),
        ({"loss.*": 0.1}, "'loss.*' = 0.1: expected a table with 'absolute' and/or 'relative'"),
        ({"loss.*": {"rtol": 0.1}}, "expected a table with 'absolute' and/or 'relative'"),
        ({"loss.*": {"relative": -1}}, "here loss.*.relative must be a number >= 0; received"),
    ],
)
def test_invalid_tolerances_name_the_figure_and_what_was_expected(table, message):
    with pytest.raises(ValueError, match=None) as error:
        parse_tolerances(table, "here")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("figures: [unclosed\n", "while parsing a flow sequence"),
        ("", "the file is empty"),
        ("pipeline: cnn\nkey: k\nseed: 0\nversions: {}\n", "it has no 'figures' (cut short?)"),
        (
            "pipeline: cnn\nkey: k\nseed: 0\nchecks: labels\nfigures: {}\n",
            "checks: 'labels' is not a list of check names",
        ),
    ],
    ids=["not YAML", "empty", "cut before its figures", "checks not a list"],
)
def test_an_unreadable_baseline_file_names_itself_and_the_fix(tmp_path, text, found):
    path = tmp_path / "cnn.tensorflow-keras3.yml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        Baseline.read(path)
    assert str(error.value).startswith(f"Cannot read the baseline {path}: {found}")
    assert str(error.value).endswith("refresh it with that command") and "--pc-update-baselines" in str(error.value)


# A fingerprint as a file written before files named their checks holds it (the check set is
# then the families its figures name), and as this run measures it.
FIGURES = {
    "data.classes": ["a", "b"],
    "data.images": 4,
    "loss.initial": 1.1,
    "loss.epoch_1": 0.9,
    "loss.epoch_2": 0.7,
    "params.total": 899,
    "predictions.class": [0, 1, 0, 1],
    "checks.labels.classes": 2,
    "checks.numerics.last_loss": 0.6,
}
FILE_BEFORE_CHECKS_WERE_NAMED = "".join(
    [
        "pipeline: cnn\nkey: k\nseed: 0\nversions: {keras: 3.15.1}\nmachine: here\nfigures:\n",
        *(f"  {name}: {value}\n" for name, value in FIGURES.items()),
    ]
)


@pytest.mark.parametrize(
    ("damage", "lacking"),
    [
        (lambda text: text[: text.index("figures:")] + "figures: {}\n", "data.classes, data.images, loss.initial"),
        (lambda text: text[: text.index("  loss.epoch_2:")], "loss.epoch_2, params.total, predictions.class"),
    ],
    ids=["figures emptied", "cut at a line end"],
)
def test_an_emptied_or_cut_short_baseline_fails_naming_what_it_lacks(tmp_path, damage, lacking):
    """It passed, as '-7 figures as in the baseline', listing the lost figures as new."""
    path = tmp_path / "cnn.k.yml"
    path.write_text(damage(FILE_BEFORE_CHECKS_WERE_NAMED))
    result = compared(pipeline(), Baseline.read(path), path, 0, FIGURES)
    assert not result.passed
    assert f"figures missing from the baseline: {lacking}" in result.summary
    assert "missing from the baseline  -" in result.details  # a row of the table: no tolerance to show
    assert "A file cut short or emptied loses figures" in result.details
    assert not re.search(r"(^|\s)-\d", str(result) + result.headline)


def test_a_file_that_names_its_checks_fails_where_a_cut_lost_a_whole_check_s_figures(tmp_path):
    path = tmp_path / "cnn.k.yml"
    Baseline("cnn", "k", 0, FIGURES, {}, "here", ("labels", "numerics")).write(path)
    text = path.read_text()
    assert "\nchecks: [labels, numerics]\nfigures:\n" in text
    path.write_text(text[: text.index("  checks.labels.")])
    result = compared(pipeline(), Baseline.read(path), path, 0, FIGURES, checks=("labels", "numerics"))
    assert not result.passed
    lost = "2 of 9 figures missing from the baseline: checks.labels.classes, checks.numerics.last_loss"
    assert lost in result.summary
    # A file from before files named their checks has only its figures to go by: the lost families look new.
    legacy = compared(pipeline(), dataclasses.replace(Baseline.read(path), checks=None), path, 0, FIGURES)
    assert legacy.passed and "checks.labels (new)" in legacy.details


def test_a_check_the_baseline_was_recorded_without_is_new_and_counts_stay_positive():
    """Recorded with -k baseline (no checks), run after the checks: the checks' figures are new, not
    failed, and the count is of the figures compared (it was -2: 3 figures less 5 listed)."""
    recorded = {name: value for name, value in FIGURES.items() if name.startswith(("data.", "loss.initial"))}
    now = {**recorded, **{f"checks.labels.figure_{i}": i for i in range(5)}}
    result = compared(pipeline(), Baseline("cnn", "k", 0, recorded, {}), Path("cnn.k.yml"), 0, now)
    assert result.passed, str(result)
    assert result.headline == "3 figures as in the baseline"
    assert result.numbers["not_compared"] == 5 and "checks.labels (5 figures, new)" in result.details


def test_a_figure_the_run_measures_and_a_file_with_the_same_checks_lacks_fails_as_missing():
    baseline = {name: value for name, value in FIGURES.items() if name != "checks.numerics.last_loss"}
    departures = compare(baseline, FIGURES, checked_then=("labels", "numerics"), checked_now=("labels", "numerics"))
    assert [(d.figure, d.moved, d.difference) for d in departures] == [
        ("checks.numerics.last_loss", True, "missing from the baseline")
    ]
    departures = compare(baseline, FIGURES, checked_then=("labels",), checked_now=("labels", "numerics"))
    assert [(d.figure, d.moved, d.difference) for d in departures] == [
        ("checks.numerics.last_loss", False, "new, not in baseline")
    ]
