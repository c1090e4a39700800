"""Child-process cases for test_distribution.py: logical devices must be set before TensorFlow starts.

`python -c "import distributed_cases; distributed_cases.main(2)"` splits the CPU into that many
logical devices, builds the small CNN under `tf.distribute.MirroredStrategy` over them (model and
optimizer in `strategy.scope()`, as Keras' distributed training guide writes it) and prints one
`RESULT: check: passed|FAILED|RAISED: ...` line per check.
"""

from __future__ import annotations


def main(devices: int) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    from helpers.pipelines import small_pipeline

    from pipeline_checks.model import compat
    from pipeline_checks.testing.small_models import small_bn_cnn

    keras = compat.keras()
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])

    def build():
        with strategy.scope():
            model = small_bn_cnn((16, 16, 3), classes=3)
            model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    # A global batch of 4: 4 / devices images per replica.
    print_every_check(small_pipeline("mirrored", build_model=build))


def print_every_check(pipeline) -> None:
    """Run the nine checks on `pipeline`, printing one `RESULT: check: passed|FAILED|RAISED: ...` line each."""
    from pipeline_checks.checks import all_checks
    from pipeline_checks.errors import PipelineRunError

    for name, check in all_checks().items():
        try:
            result = check(pipeline)
            outcome = "passed" if result.passed else f"FAILED: {result.summary}"
        except PipelineRunError as error:
            outcome = f"RAISED: {error}"
        print(f"RESULT: {name}: {outcome}", flush=True)


def per_replica_batchnorm(devices: int, seed: int = 0) -> None:
    """The per-replica BatchNorm row and its twin, over `devices` logical CPUs: a global batch of 4, so
    4 / devices images per replica, each normalized with its own statistics unless synchronized=True.

    From tensorflow/tensorflow#46488 (a model with BatchNormalization trained under MirroredStrategy on
    4 GPUs evaluates otherwise than it trained) and its fix, google/automl#384's SyncBatchNormalization,
    now `BatchNormalization(synchronized=True)`. Prints one `RESULT: variant: ...` line each.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    from helpers.pipelines import small_pipeline

    from pipeline_checks.checks import check_agreement
    from pipeline_checks.model import compat

    keras = compat.keras()
    layers = keras.layers
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])

    def build(synchronized: bool):
        with strategy.scope():
            inputs = keras.Input((16, 16, 3))
            x = inputs
            for filters in (8, 16):
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
                x = layers.BatchNormalization(synchronized=synchronized, momentum=0.9)(x)
                x = layers.Activation("relu")(x)
                x = layers.MaxPooling2D()(x)
            x = layers.GlobalAveragePooling2D()(x)
            model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
            model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    for variant, synchronized in (("per-replica", False), ("synchronized", True)):
        pipeline = small_pipeline(
            f"mirrored-{variant}",
            build_model=lambda synchronized=synchronized: build(synchronized),
            fit_kwargs={"epochs": 30, "batch_size": 4},
            after_fit=None,
        )
        result = check_agreement(pipeline, seed=seed)
        outcome = "passed" if result.passed else f"FAILED: {result.summary} {result.details}"
        print(f"RESULT: {variant}: {' '.join(outcome.split())}", flush=True)
