"""check_save_load: models that do not survive a .keras or weights file round trip fail, with the fix."""

import os
import re
import tempfile

import numpy as np
import pytest
from broken_pipelines import reproducibility
from broken_pipelines.common import DATA, small_pipeline

from pipeline_checks import PipelineCheckFailure
from pipeline_checks.checks import check_save_load
from pipeline_checks.model import compat
from pipeline_checks.run.training import shared_run

SEED = 0
BROKEN = [case for case in reproducibility.CASES if "save_load" in case.causes]
TWINS = [small_pipeline, reproducibility.registered_custom_layer]


def fingerprint(run) -> list:
    """Bytes of everything the check could change: the shared run's model (BN statistics and
    optimizer included) and its inputs."""
    arrays = [*run.model.weights, *compat.optimizer_variables(run.model.optimizer), run.x_train, run.x_infer]
    return [np.asarray(a).tobytes() for a in arrays] + [DATA.images.tobytes()]


@pytest.fixture
def checked(check_once):
    """`checked(factory)`: the pipeline, its state before the check, and the result; each computed once."""
    return lambda factory: check_once(check_save_load, factory, fingerprint, SEED)


@pytest.mark.parametrize("case", BROKEN, ids=lambda case: case.pipeline().name)
def test_broken_pipeline_fails_and_names_the_cause(checked, case):
    _, _, result = checked(case.pipeline)
    assert not result.passed, str(result)
    assert re.search(case.causes["save_load"], str(result)), str(result)
    assert "Fix:" in result.details


@pytest.mark.parametrize("factory", TWINS, ids=lambda factory: factory().name)
def test_correct_twin_passes(checked, factory):
    _, _, result = checked(factory)
    assert result.passed, str(result)
    assert result.numbers["keras_prediction_difference"] == result.numbers["weights_prediction_difference"] == 0.0


def test_a_get_config_bug_fails_the_keras_file_only(checked):
    _, _, result = checked(reproducibility.get_config_omits_argument)
    assert re.match(r"the model loaded from the \.keras (file|folder) predicts differently", result.summary)
    assert "with every weight identical" in result.summary
    assert "weights file: loads back to identical weights and predictions." in result.details
    assert result.numbers["keras_prediction_difference"] > result.numbers["tolerance"]
    assert result.numbers["keras_weights_differing"] == 0


def test_custom_objects_reach_load_model(checked):
    pipeline, _, _ = checked(reproducibility.unregistered_custom_layer)
    layer = reproducibility.custom_layers().UnregisteredRescale
    result = check_save_load(pipeline, SEED, custom_objects={"UnregisteredRescale": layer})
    assert result.passed, str(result)


def test_raise_if_failed_raises_pipeline_check_failure(checked):
    _, _, result = checked(reproducibility.state_outside_variables)
    with pytest.raises(PipelineCheckFailure, match="check save_load FAILED on pipeline 'state-outside-variables'"):
        result.raise_if_failed()
    _, _, result = checked(small_pipeline)
    assert result.raise_if_failed() is result


@pytest.mark.parametrize(
    "factory", [small_pipeline, reproducibility.get_config_omits_argument], ids=["correct", "broken"]
)
def test_leaves_the_shared_run_and_the_data_as_they_were(checked, factory):
    pipeline, before, _ = checked(factory)
    assert fingerprint(shared_run(pipeline, SEED)) == before


@pytest.mark.parametrize(
    "factory", [small_pipeline, reproducibility.unregistered_custom_layer], ids=["correct", "broken"]
)
def test_files_go_under_directory_and_are_removed(checked, factory, tmp_path, monkeypatch):
    pipeline, _, _ = checked(factory)
    folders, original = [], tempfile.TemporaryDirectory

    def recorded(*args, **kwargs):
        folder = original(*args, **kwargs)
        folders.append(folder.name)
        return folder

    monkeypatch.setattr(tempfile, "TemporaryDirectory", recorded)
    check_save_load(pipeline, SEED, directory=tmp_path)
    ours = [folder for folder in folders if os.path.dirname(folder) == str(tmp_path)]
    assert len(ours) == 1 and all(folder.startswith(ours[0]) for folder in folders)  # Keras extracts inside ours
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("unzipped", [True, False], ids=["keras-folder", "keras-file"])
def test_load_model_reads_the_weights_from_a_file_not_from_memory(checked, monkeypatch, unzipped):
    """Keras 3 reads a .keras file's weights into memory where it can: a copy of every weight and
    optimizer slot at the gate's peak. The check saves a folder where Keras can, whose weights
    file both loads read; else it makes load_model extract the archive's beside it."""
    if not compat.is_keras3():
        pytest.skip("Keras 2's load_model reads the weights from the file already")
    from keras.src.saving import saving_lib

    from pipeline_checks.model import saving

    if unzipped and not saving.saves_unzipped(compat.keras()):
        pytest.skip("this Keras saves no .keras folder (zipped=False came in Keras 3.4)")
    monkeypatch.setattr(saving, "saves_unzipped", lambda keras: unzipped)
    pipeline, _, _ = checked(small_pipeline)
    extracted, original = [], saving_lib.H5IOStore.__init__
    asked = getattr(saving_lib, "is_memory_sufficient", None)  # newer Keras 3; older ones stream from the archive

    def recorded(store, path_or_io, archive=None, mode="r"):
        if mode == "r":
            extracted.append("in memory" if hasattr(path_or_io, "read") else os.path.basename(str(path_or_io)))
        original(store, path_or_io, archive, mode)

    monkeypatch.setattr(saving_lib.H5IOStore, "__init__", recorded)
    assert check_save_load(pipeline, SEED).passed
    assert extracted == ["model.weights.h5", "model.weights.h5"]  # load_weights', then load_model's
    assert getattr(saving_lib, "is_memory_sufficient", None) is asked  # put back


def test_a_keras_folder_holds_the_weights_file_save_weights_writes(tmp_path):
    """The check loads a .keras folder's weights file as the weights file: that is sound only while
    model.save and save_weights write the same file (the same datasets, the same values)."""
    keras = compat.keras()
    from pipeline_checks.model import saving

    if not saving.saves_unzipped(keras):
        pytest.skip("this Keras saves no .keras folder: the check writes a weights file of its own")
    h5py = pytest.importorskip("h5py")
    run = shared_run(small_pipeline(), SEED)  # trained: the optimizer's slots are in both files
    run.model.save(tmp_path / "model", zipped=False)
    run.model.save_weights(tmp_path / "model.weights.h5")

    def datasets(path):
        found = {}
        with h5py.File(path, "r") as file:
            file.visititems(
                lambda name, item: found.update({name: item[()].tobytes()}) if isinstance(item, h5py.Dataset) else None
            )
        return found

    written_by_save, written_by_save_weights = (
        datasets(tmp_path / "model" / "model.weights.h5"),
        datasets(tmp_path / "model.weights.h5"),
    )
    assert len(written_by_save_weights) > len(run.model.weights)  # the optimizer's variables too
    assert written_by_save == written_by_save_weights


def test_a_failed_save_still_checks_the_weights_file(checked):
    """model.save fails on a layer without get_config: the weights file is written and checked on its own."""
    _, _, result = checked(reproducibility.get_config_not_overridden)
    assert re.fullmatch(r"the \.keras (file|folder) does not save \(NotImplementedError: .*\)", result.summary), str(
        result
    )
    assert "weights file: loads back to identical weights and predictions." in result.details


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"tolerance": -1}, ValueError, r"tolerance must be a non-negative number; received: tolerance=-1"),
        ({"tolerance": None}, ValueError, r"received: tolerance=None"),
        (
            {"directory": "/no/such/folder"},
            ValueError,
            r"directory must be an existing folder; received: directory='/no/such/folder'",
        ),
        (
            {"directory": __file__},
            ValueError,
            r"directory must be an existing folder; received: directory='.*test_check_save_load.py'",
        ),
        (
            {"custom_objects": ["Rescale"]},
            TypeError,
            r"custom_objects must be a dict .*; received: custom_objects=\['Rescale'\]",
        ),
        ({"custom_objects": {1: object}}, TypeError, r"received: custom_objects=\{1: <class 'object'>\}"),
    ],
    ids=[
        "tolerance-negative",
        "tolerance-none",
        "directory-missing",
        "directory-a-file",
        "custom-objects-a-list",
        "custom-objects-key-not-a-name",
    ],
)
def test_bad_arguments_are_rejected_before_training(arguments, error, message):
    arguments = {"pipeline": small_pipeline("never-trained"), **arguments}
    with pytest.raises(error, match=message):
        check_save_load(**arguments)
