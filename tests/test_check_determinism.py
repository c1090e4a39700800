"""check_determinism: same-seed runs that differ fail, with the stage where randomness enters."""

import re

import numpy as np
import pytest
from broken_pipelines import reproducibility, stages
from broken_pipelines.common import DATA, small_pipeline
from helpers.kernel_noise import nudge_replays

from pipeline_checks import PipelineCheckFailure
from pipeline_checks.checks import check_determinism
from pipeline_checks.run.training import forget_shared_runs, shared_run

SEED = 0
BROKEN = [case for case in reproducibility.CASES if "determinism" in case.causes]
TWINS = [small_pipeline, reproducibility.seeded_augmentation, reproducibility.augmentation_layer]


def fingerprint(run) -> list:
    """Bytes of everything the check could change: the shared run's model, snapshots and data."""
    arrays = [*run.model.weights, *run.model.optimizer.variables, *run.after_first_epoch, run.x_train, run.x_infer]
    return [np.asarray(a).tobytes() for a in arrays] + [DATA.images.tobytes(), DATA.labels.tobytes()]


@pytest.fixture
def checked(check_once):
    """`checked(factory)`: the pipeline, its state before the check, and the result; each computed once."""
    return lambda factory: check_once(check_determinism, factory, fingerprint, SEED)


@pytest.mark.parametrize("case", BROKEN, ids=lambda case: case.pipeline().name)
def test_broken_pipeline_fails_and_names_the_cause(checked, case):
    _, _, result = checked(case.pipeline)
    assert not result.passed, str(result)
    assert re.search(case.causes["determinism"], str(result)), str(result)
    assert result.numbers["variables_differing"] > 0
    assert "Fix:" in result.details


@pytest.mark.parametrize("factory", TWINS, ids=lambda factory: factory().name)
def test_correct_twin_passes_bitwise(checked, factory):
    _, _, result = checked(factory)
    assert result.passed, str(result)
    assert result.numbers["largest_difference"] == 0.0  # CPU TensorFlow: same seed, same bits
    assert "bitwise-identical" in result.summary


def test_failure_names_how_much_and_where(checked):
    _, _, result = checked(reproducibility.unseeded_augmentation)
    assert re.search(r"\d+ variables differ \(largest relative difference [\d.e+-]+ in \S+/\S+\)", result.summary)
    assert re.search(r"\d+ of 12 images differ, by up to [\d.]+", result.details)


def test_raise_if_failed_raises_pipeline_check_failure(checked):
    _, _, result = checked(reproducibility.unseeded_data_order)
    with pytest.raises(PipelineCheckFailure, match="check determinism FAILED on pipeline 'unseeded-data-order'"):
        result.raise_if_failed()
    _, _, result = checked(small_pipeline)
    assert result.raise_if_failed() is result


def test_tolerance_lets_small_differences_pass(checked):
    pipeline, _, strict = checked(reproducibility.unseeded_augmentation)
    lenient = check_determinism(pipeline, SEED, tolerance=10 * strict.numbers["largest_difference"])
    assert lenient.passed, str(lenient)
    assert "relative" in lenient.summary


@pytest.mark.parametrize(
    "factory", [small_pipeline, reproducibility.clock_seeded_noise_layer], ids=["correct", "broken"]
)
def test_leaves_the_shared_run_and_the_data_as_they_were(checked, factory):
    pipeline, before, _ = checked(factory)
    assert fingerprint(shared_run(pipeline, SEED)) == before


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"tolerance": -1e-6}, ValueError, r"tolerance must be a non-negative number; received: tolerance=-1e-06"),
        ({"tolerance": float("nan")}, ValueError, r"received: tolerance=nan"),
        ({"tolerance": float("inf")}, ValueError, r"received: tolerance=inf"),
        ({"tolerance": "0"}, ValueError, r"received: tolerance='0'"),
    ],
    ids=[
        "tolerance-negative",
        "tolerance-nan",
        "tolerance-inf",
        "tolerance-string",
    ],
)
def test_bad_arguments_are_rejected_before_training(arguments, error, message):
    arguments = {"pipeline": small_pipeline("never-trained"), **arguments}
    with pytest.raises(error, match=message):
        check_determinism(**arguments)


def test_differences_only_after_the_forward_pass_pass_as_kernel_noise_unless_refused(monkeypatch):
    """Kernels that sum in another order each run: simulated by nudging the replay's final weights."""
    nudge_replays(monkeypatch)
    pipeline = small_pipeline("kernel-noise")
    try:
        allowed = check_determinism(pipeline, SEED)
        strict = check_determinism(pipeline, SEED, allow_kernel_noise=False)
    finally:
        forget_shared_runs(pipeline)
    assert allowed.passed, str(allowed)
    assert allowed.numbers["kernel_noise"] is True and allowed.numbers["largest_difference"] > 0
    assert "only through non-deterministic kernels" in allowed.summary and "Not a seeding bug" in allowed.details
    assert not strict.passed and strict.numbers["kernel_noise"] is False


def fits_then_fits_other_data(model, data):
    """Two stages, the second on a copy of the images turned by 180 degrees: data of its own."""
    x, y = data
    model.fit(x, y, epochs=2, batch_size=4)
    return model.fit(np.ascontiguousarray(x[:, ::-1, ::-1]), y, epochs=2, batch_size=4)


def test_a_train_function_is_replayed_to_its_first_fits_first_epoch_where_every_stage_fits_the_same_data():
    fits = []

    def counted(model, data):
        fits.append("start")
        return stages.fine_tune(model, data)

    pipeline = small_pipeline("stages-counted", build_model=stages.pretrained_on_base, train=counted)
    try:
        result = check_determinism(pipeline)
    finally:
        forget_shared_runs(pipeline)
    assert result.passed, result
    assert "after the first epoch of fit 1 (of 2 stages, all trained on the same data)" in result.summary
    assert result.numbers["overrides"] == "stops the train function when its first fit's first epoch ends"
    assert fits == ["start", "start"]  # the shared run, then the replay's prefix

    other = small_pipeline("stages-other-data", build_model=stages.pretrained_on_base, train=fits_then_fits_other_data)
    try:
        result = check_determinism(other)
    finally:
        forget_shared_runs(other)
    assert result.passed and "after the train function (2 stages)" in result.summary  # replayed in full


def test_randomness_in_a_train_functions_first_epoch_still_fails():
    rng = np.random.default_rng()  # the bug: unseeded

    def noisy_then_fine_tuned(model, data):
        x, y = data
        return stages.fine_tune(model, (x + rng.normal(0, 0.1, x.shape).astype(x.dtype), y))

    pipeline = small_pipeline("stages-unseeded", build_model=stages.pretrained_on_base, train=noisy_then_fine_tuned)
    try:
        result = check_determinism(pipeline)
    finally:
        forget_shared_runs(pipeline)
    assert not result.passed and "differ after the first epoch of fit 1" in result.summary
