"""Child-process cases for test_distribution_jax.py: JAX fixes its devices when it starts.

`python -c "import distributed_jax_cases; distributed_jax_cases.main()"`, run with
`XLA_FLAGS=--xla_force_host_platform_device_count=N` and `KERAS_BACKEND=jax`, sets
`keras.distribution.DataParallel` over the N host CPU devices (as keras.io's "Distributed training
with Keras 3 / JAX" guide writes it), builds the small CNN under it and prints one
`RESULT: check: passed|FAILED|RAISED: ...` line per check.
"""

from __future__ import annotations


def data_parallel():
    """Set DataParallel over every device JAX was started with; return the device count."""
    import keras

    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def main() -> None:
    devices = data_parallel()
    from distributed_cases import print_every_check
    from helpers.pipelines import small_pipeline

    print(f"RESULT: devices: {devices}", flush=True)
    # A global batch of 4 over the devices, as the MirroredStrategy row.
    print_every_check(small_pipeline("data-parallel"))


def batchnorm_statistics() -> None:
    """Which batch DataParallel's BatchNormalization normalizes over: one train step, momentum 0.

    With momentum 0 the moving mean after one step is the batch mean the layer used. A global batch of
    4 over 4 devices puts one example on each: per-device statistics would give moving variance 0 and a
    moving mean that is one device's example; global ones give the mean and variance of all four.
    Prints the global mean, the moving mean and the largest per-device variance it could have been.
    """
    import numpy as np

    devices = data_parallel()
    import keras

    x = np.array([[0.0], [1.0], [2.0], [7.0]], dtype="float32")
    inputs = keras.Input((1,))
    normalized = keras.layers.BatchNormalization(momentum=0.0, epsilon=1e-6, center=False, scale=False)(inputs)
    model = keras.Model(inputs, normalized)
    model.compile("sgd", "mse")
    model.fit(x, np.zeros_like(x), batch_size=4, epochs=1, shuffle=False, verbose=0)
    layer = model.layers[-1]
    print(f"RESULT: devices: {devices}", flush=True)
    print(f"RESULT: moving mean sharding: {layer.moving_mean.value.sharding}", flush=True)
    print(f"RESULT: moving mean: {float(np.asarray(layer.moving_mean)[0]):.6f}", flush=True)
    print(f"RESULT: moving variance: {float(np.asarray(layer.moving_variance)[0]):.6f}", flush=True)
    print(f"RESULT: global mean: {float(x.mean()):.6f}", flush=True)
    print(f"RESULT: global variance: {float(x.var()):.6f}", flush=True)


def per_device_batchnorm(seed: int = 0) -> None:
    """The MirroredStrategy per-replica BatchNorm row under DataParallel: a global batch of 4 over the
    devices, one image each, BatchNormalization as Keras builds it. `synchronized=True` is TensorFlow's
    (Keras refuses it on JAX), and no twin is needed: one SPMD program computes each layer over the
    global batch, so this pipeline is its own synchronized twin. Prints one `RESULT: agreement: ...` line.
    """
    devices = data_parallel()
    import keras
    from helpers.pipelines import small_pipeline

    from pipeline_checks.checks import check_agreement

    layers = keras.layers

    def build():
        inputs = keras.Input((16, 16, 3))
        x = inputs
        for filters in (8, 16):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    print(f"RESULT: devices: {devices}", flush=True)
    pipeline = small_pipeline(
        "data-parallel-batchnorm", build_model=build, fit_kwargs={"epochs": 30, "batch_size": 4}, after_fit=None
    )
    result = check_agreement(pipeline, seed=seed)
    outcome = "passed" if result.passed else f"FAILED: {result.summary}"
    print(f"RESULT: agreement: {' '.join(outcome.split())}", flush=True)
    print(f"RESULT: details: {' '.join(str(result.details).split())}", flush=True)


# Detection-matrix rows under DataParallel: the MirroredStrategy selection (distributed_cases.MIRRORED_ROWS),
# each judged by its Case on JAX unless `data_parallel_differences` says how Keras under DataParallel behaves
# otherwise, with the numbers; and two rows left out under MirroredStrategy, where agreement names the
# per-replica BatchNormalization cause for stale statistics (distributed_cases says why). DataParallel is one
# SPMD program whose BatchNormalization normalizes over the global batch, so the model reports one replica
# and no per-replica cause arises. They are also the agreement rows here: on JAX huge-learning-rate's
# weights explode without going NaN, and frozen-ported-batchnorm's warm-up already fits the images, so
# neither fails agreement (their Cases say so). Measured on 2 host CPU devices, a global batch of 4.
def data_parallel_rows() -> tuple:
    from distributed_cases import MIRRORED_ROWS

    return (*MIRRORED_ROWS, "inference:stale_batchnorm", "data:inference_skips_rescaling")


def data_parallel_differences() -> dict:
    return {}


def matrix_rows_under_data_parallel(rows=None) -> None:
    """Each of `rows` (default `data_parallel_rows()`) built under `keras.distribution.DataParallel` over every
    device JAX was started with, set before the first build as keras.io's guide sets it, and the model built
    inside the distribution's scope: one JSON `RESULT:` line per (row, check), then one per row's seconds."""
    import json
    import time

    devices = data_parallel()
    import keras
    from distributed_cases import matrix_rows, print_every_check_as_json, under_scope

    print(f"RESULT: devices: {devices}", flush=True)
    distribution = keras.distribution.distribution()
    for case in matrix_rows(rows or data_parallel_rows()):
        start = time.perf_counter()
        pipeline = under_scope(case, distribution.scope)
        print_every_check_as_json(pipeline.name, pipeline)
        seconds = {"row": pipeline.name, "seconds": round(time.perf_counter() - start, 1)}
        print(f"RESULT: {json.dumps(seconds)}", flush=True)
