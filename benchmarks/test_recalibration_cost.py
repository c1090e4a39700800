"""Recalibration costs about one training-mode forward pass over the data: measured here.

Run with timing: `pytest benchmarks --benchmark-enable`. In the default run (and CI) the
benchmark plugin is disabled and each case runs once, as a smoke test.
"""

import statistics
import time

import numpy as np
import pytest

from pipeline_checks import build_application, make_tiny_images, recalibrate_batchnorm

ROUNDS = 7


@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2"])
def test_recalibration_vs_one_training_mode_forward_pass(benchmark, name):
    application = build_application(name, classes=3)
    data = make_tiny_images(classes=4, per_class=2, size=32, kind="photos")
    x = np.asarray(application.preprocess_input(data.images.astype("float32")))
    model = application.model
    model(x, training=True)  # build and warm the eager kernels once, outside every timing

    changes = []

    def undo_last_round():
        while changes:
            changes.pop().restore()

    def recalibrate():
        changes.append(recalibrate_batchnorm(model, x, batch_size=len(x)))

    benchmark.extra_info.update(model=name, images=len(x), input_size=x.shape[1])
    benchmark.pedantic(recalibrate, setup=undo_last_round, rounds=ROUNDS, warmup_rounds=1)
    undo_last_round()
    forward = []
    for _ in range(1 if benchmark.disabled else ROUNDS):  # the smoke form runs each side once
        start = time.perf_counter()
        model(x, training=True)
        forward.append(time.perf_counter() - start)
    if benchmark.disabled:
        return
    floor = statistics.median(forward)
    benchmark.extra_info.update(
        train_mode_forward_median_s=floor, ratio_to_forward=benchmark.stats.stats.median / floor
    )
