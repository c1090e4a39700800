"""What reading the data as the repository does costs: the checks on a folder against arrays.

The same 12 images, model and fit arguments, declared twice: as uint8 arrays with a
NumPy `preprocess_train`, and as a folder of PNG files read by `image_dataset_from_directory`
with the scaling in a `.map` of the training dataset (the checks then also run that dataset
function on the raw images to compare it with serving). `pytest
benchmarks/test_dataset_input_cost.py --benchmark-enable` records `ratio_to_array_input`.
"""

import numpy as np
import pytest
from test_suite_cost import compiled_cnn, every_check

from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm

ROUNDS = 3
ARRAYS_KEY = pytest.StashKey[float]()
DATA = make_tiny_images(classes=3, per_class=4, size=16, seed=0)
FIT = {"epochs": 15, "batch_size": 4}


def recalibrated(model, x):
    recalibrate_batchnorm(model, x, batch_size=4)


def unit_scale(images):
    return np.asarray(images, dtype=np.float32) / np.float32(255)


def scaled(dataset):
    return dataset.map(lambda x, y: (x / 255.0, y))


def test_every_check_on_arrays(benchmark, request):
    pipeline = Pipeline(
        "arrays", compiled_cnn, DATA, preprocess_train=unit_scale, fit_kwargs=FIT, after_fit=recalibrated
    )
    benchmark.group = "dataset input cost"
    benchmark.pedantic(every_check, args=(pipeline,), rounds=ROUNDS, warmup_rounds=0)
    if not benchmark.disabled:
        request.config.stash[ARRAYS_KEY] = benchmark.stats.stats.median


def test_every_check_on_a_folder_dataset(benchmark, request, tmp_path):
    pytest.importorskip("tensorflow")
    root = DATA.to_directory(tmp_path / "train")
    pipeline = Pipeline(
        "folder",
        compiled_cnn,
        root,
        image_size=(16, 16),
        train_dataset=scaled,
        preprocess_infer=unit_scale,
        fit_kwargs=FIT,
        after_fit=recalibrated,
    )
    benchmark.group = "dataset input cost"
    benchmark.pedantic(every_check, args=(pipeline,), rounds=ROUNDS, warmup_rounds=0)
    arrays = request.config.stash.get(ARRAYS_KEY, None)
    if arrays is not None:
        benchmark.extra_info.update(
            array_input_median_s=arrays, ratio_to_array_input=benchmark.stats.stats.median / arrays
        )
