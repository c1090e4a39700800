"""The fixture's measured step time against a bare loop of the same compiled step.

extra_info["overhead"] is fixture median / bare-loop median - 1 (aim: within 3%).
"""

import statistics
import time

import numpy as np

from pipeline_checks.pytest_plugin.benchmark import make_train_step

ROUNDS = 30


def small_model():
    from pipeline_checks.model import compat

    keras = compat.keras()
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_fixture_overhead_against_a_bare_loop(train_step_benchmark):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 32)
    model = small_model()
    fixture_median = train_step_benchmark(model, x, y, rounds=ROUNDS, warmup_rounds=3)
    step = make_train_step(model, x, y)
    bare = []
    for _ in range(ROUNDS if fixture_median is not None else 1):  # disabled: the smoke form runs each loop once
        start = time.perf_counter()
        step()
        bare.append(time.perf_counter() - start)
    if fixture_median is None:
        return
    bare_median = statistics.median(bare)
    train_step_benchmark.benchmark.extra_info.update(
        bare_loop_ms_per_step=bare_median * 1e3, overhead=fixture_median / bare_median - 1
    )
