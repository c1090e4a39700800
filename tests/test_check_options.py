"""Pipeline(check_options={family: {...}}) changes what each family with options does, an argument
beats it, and a bad value from it is refused naming the pipeline and the family.

The families that train share one run: one pipeline sets the options of all of them, and options
that only change the judging (a tolerance) need no new training.
"""

import dataclasses
import os
from collections.abc import Mapping

import pytest
from broken_pipelines.data import raw_pixels_without_normalization
from helpers.kernel_noise import nudge_replays
from helpers.pipelines import small_pipeline

from pipeline_checks.checks import (
    check_agreement,
    check_determinism,
    check_labels,
    check_overfit,
    check_preprocessing,
    check_save_load,
)
from pipeline_checks.run.training import forget_shared_runs, shared_run

SEED = 0


class Watched(Mapping):
    """An empty custom_objects mapping that notes each time something reads it."""

    def __init__(self):
        self.reads = 0

    def __getitem__(self, key):
        self.reads += 1
        raise KeyError(key)

    def __iter__(self):
        self.reads += 1
        return iter(())

    def __len__(self):
        self.reads += 1
        return 0


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return tmp_path_factory.mktemp("from-options"), tmp_path_factory.mktemp("from-argument")


@pytest.fixture(scope="module")
def optioned(folders):
    """The small CNN with options for every family that judges its training run, trained once."""
    pipeline = small_pipeline(
        "optioned",
        check_options={
            "agreement": {"tolerance": 0.0625},
            "overfit": {"target_accuracy": 0.75, "tolerance": 0.09375},
            "determinism": {"tolerance": 0.0625, "allow_kernel_noise": False},
            "save_load": {"tolerance": 0.0625, "directory": str(folders[0]), "custom_objects": Watched()},
        },
    )
    yield pipeline
    forget_shared_runs(pipeline)


def test_agreement_tolerance(optioned):
    by_option = check_agreement(optioned, SEED)
    by_argument = check_agreement(optioned, SEED, tolerance=0.125)
    assert "0.0625" in str(by_option), str(by_option)
    assert "0.125" in str(by_argument) and "0.0625" not in str(by_argument), str(by_argument)


def test_overfit_target_accuracy_and_tolerance(optioned):
    by_option = check_overfit(optioned, SEED)
    assert by_option.numbers["target"] == 0.75 and "Target 0.75 as given" in by_option.details
    by_argument = check_overfit(optioned, SEED, target_accuracy=0.5, tolerance=0.15625)
    assert by_argument.numbers["target"] == 0.5
    # Inference is judged on the run's agreement, measured once per tolerance: each tolerance was measured.
    assert {0.09375, 0.15625} <= set(shared_run(optioned, SEED).agreements)


def test_determinism_tolerance(optioned):
    assert check_determinism(optioned, SEED).numbers["tolerance"] == 0.0625
    assert check_determinism(optioned, SEED, tolerance=0.125).numbers["tolerance"] == 0.125


def test_determinism_allow_kernel_noise(optioned, monkeypatch):
    nudge_replays(monkeypatch)
    refused = check_determinism(optioned, SEED, tolerance=0.0)  # allow_kernel_noise=False from check_options
    allowed = check_determinism(optioned, SEED, tolerance=0.0, allow_kernel_noise=True)
    assert not refused.passed and refused.numbers["kernel_noise"] is False, str(refused)
    assert allowed.passed and allowed.numbers["kernel_noise"] is True, str(allowed)


def test_save_load_tolerance_directory_and_custom_objects(optioned, folders):
    from_options, from_argument = folders
    watched_option, watched_argument = optioned.check_options["save_load"]["custom_objects"], Watched()

    def changed(folder, **arguments):
        # The check saves under `directory` and removes what it wrote: the folder's mtime shows it.
        before = os.stat(folder).st_mtime_ns
        result = check_save_load(optioned, SEED, **arguments)
        return os.stat(folder).st_mtime_ns != before, result

    used, by_option = changed(from_options)
    assert used and by_option.numbers["tolerance"] == 0.0625 and watched_option.reads > 0
    assert list(from_options.iterdir()) == []
    watched_option.reads = 0
    beaten = {"tolerance": 1e-3, "directory": str(from_argument), "custom_objects": watched_argument}
    before = os.stat(from_options).st_mtime_ns
    used, by_argument = changed(from_argument, **beaten)
    assert used and os.stat(from_options).st_mtime_ns == before
    assert by_argument.numbers["tolerance"] == 1e-3
    assert watched_argument.reads > 0 and watched_option.reads == 0


def test_labels_initial_loss_factor(forgotten):
    """Raw 0..255 pixels start the loss at about 8 x ln 3: failed at the default factor 3, not at 50."""
    pipeline = forgotten(
        dataclasses.replace(raw_pixels_without_normalization(), check_options={"labels": {"initial_loss_factor": 50.0}})
    )
    by_option = check_labels(pipeline, SEED)
    by_argument = check_labels(pipeline, SEED, initial_loss_factor=3.0)
    assert by_option.passed, str(by_option)
    assert not by_argument.passed and "loss at initialization" in by_argument.summary, str(by_argument)


def test_preprocessing_tolerance(forgotten):
    """An inference path 0.1 of the range off the training one: within 0.25, beyond the default 0.05."""
    pipeline = forgotten(
        small_pipeline(
            "offset-inference",
            preprocess_infer=lambda images: images.astype("float32") / 255.0 + 0.1,
            check_options={"preprocessing": {"tolerance": 0.25}},
        )
    )
    by_option = check_preprocessing(pipeline, SEED)
    by_argument = check_preprocessing(pipeline, SEED, tolerance=0.05)
    assert by_option.passed, str(by_option)
    assert not by_argument.passed, str(by_argument)


def test_preprocessing_samples(forgotten):
    seen = []

    def scaled(images):
        seen.append(len(images))
        return images.astype("float32") / 255.0

    pipeline = forgotten(
        small_pipeline("counted-samples", preprocess_train=scaled, check_options={"preprocessing": {"samples": 5}})
    )
    check_preprocessing(pipeline, SEED)
    by_option, seen[:] = set(seen), []
    check_preprocessing(pipeline, SEED, samples=7)
    assert (by_option, set(seen)) == ({5}, {7})


BAD_VALUES = [
    pytest.param(check_agreement, "agreement", "tolerance", -1, id="agreement-tolerance"),
    pytest.param(check_labels, "labels", "initial_loss_factor", 1, id="labels-initial_loss_factor"),
    pytest.param(check_overfit, "overfit", "target_accuracy", 0, id="overfit-target_accuracy"),
    pytest.param(check_overfit, "overfit", "tolerance", 1.5, id="overfit-tolerance"),
    pytest.param(check_preprocessing, "preprocessing", "tolerance", -0.5, id="preprocessing-tolerance"),
    pytest.param(check_preprocessing, "preprocessing", "samples", 0, id="preprocessing-samples"),
    pytest.param(check_determinism, "determinism", "tolerance", -1, id="determinism-tolerance"),
    pytest.param(check_save_load, "save_load", "tolerance", "1e-5", id="save_load-tolerance"),
    pytest.param(check_save_load, "save_load", "directory", "/no/such/folder", id="save_load-directory"),
]


@pytest.mark.parametrize("check, family, option, value", BAD_VALUES)
def test_a_bad_value_from_check_options_is_refused_naming_pipeline_and_family(check, family, option, value, forgotten):
    pipeline = forgotten(
        small_pipeline("x", fit_kwargs={"epochs": 1, "batch_size": 4}, check_options={family: {option: value}})
    )
    with pytest.raises(ValueError) as raised:
        check(pipeline, SEED)
    message = str(raised.value)
    assert message.startswith(f"Pipeline 'x': check_options[{family!r}]: {option} must be "), message
    assert message.endswith(f"; received: {option}={value!r}"), message
