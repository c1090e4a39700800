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


# Detection-matrix rows run under a strategy (`matrix_rows_under_mirrored_strategy`, and
# distributed_jax_cases.matrix_rows_under_data_parallel): the small CNN on 16 x 16 images, at least one
# broken row per check family, each a "module:function" of broken_pipelines. Each must fail what its Case
# says, except where Keras under the strategy behaves otherwise: `mirrored_differences` says how and why,
# with the numbers. Measured on 2 logical CPU devices, a global batch of 4 (2 images per replica).
#
# Left out under MirroredStrategy, and why:
# - data:inference_skips_rescaling (preprocessing): preprocessing fails as it should, but agreement fails
#   too, evaluate on the raw pixels 0.67 (loss 34.65, predict's 5.37) against train-mode 1.0 (0.054) and
#   recalibrated 1.0 (0.046), where on one device evaluate gives 1.0 (loss 0.0000); its cause is named
#   "stale BatchNormalization moving statistics", since recalibrating on the served inputs closes the gap (as
#   agreement names it on regression-served-raw-pixels). data:mobilenet_v2_inputs_in_unit_range stands for
#   preprocessing instead (its model trains as the correct small CNN does).
# - inference:learning_rate_too_low (overfit): caught as on one device, but overfit's 150 continued epochs
#   make it 122 s of the child's 6 minutes; training:huge_learning_rate fails overfit as well.
MIRRORED_ROWS = (
    "inference:stale_batchnorm",  # agreement, naming stale statistics (recalibration closes the gap)
    "training:huge_learning_rate",  # numerics, overfit, agreement (not finite)
    "training:frozen_ported_batchnorm",  # frozen_layers, agreement (differs: mirrored_differences)
    "training:frozen_base_not_recompiled",  # nothing under the strategy (differs: mirrored_differences)
    "data:mobilenet_v2_inputs_in_unit_range",  # preprocessing
    "data:one_based_labels",  # labels
    "training:stop_gradient_in_path",  # variables_change
    "reproducibility:clock_seeded_noise_layer",  # determinism
    "reproducibility:unregistered_custom_layer",  # save_load
)


def mirrored_differences() -> dict:
    from broken_pipelines.common import Expectation

    return {
        "training:frozen_ported_batchnorm": Expectation(
            "under MirroredStrategy the ported BatchNormalization normalizes each replica's 2 images with their own "
            "statistics in fit, which peaks at 0.92 (1.0 on one device): short of the target 1, overfit judges "
            "the head on its frozen base by whether it learns, and its inference loss falls (0.920 before fit, "
            "0.886 after), so overfit passes; evaluate's 0.33 against train-mode's 1.0 is agreement's to catch",
            {
                "frozen_layers": r"(?s)frozen BN moving statistics moved.*PortedBatchNorm updates its statistics",
                "agreement": r"Gap: evaluate vs train-mode",
            },
        ),
        "training:frozen_base_not_recompiled": Expectation(
            "under MirroredStrategy (Keras 3.15 on TF 2.21) fit after the freeze moves none of the base's 12 "
            "variables (on one device it moves all 12, weights and BN statistics): fit's tf.function over the "
            "iterator traces again for the new DistributedIterator (tracing count 1 -> 2 after the warm-up; "
            "1 -> 1 on one device), so its train_step reads the trainable weights and the BN mode anew. The "
            "freeze takes effect without compiling again: no bug to catch, every check passes",
            {},
        ),
    }


def expectation(row: str, case, differences: dict):
    """What `case` (the row `row` of a strategy's table) must fail under the strategy: (causes, raises, why)."""
    difference = differences.get(row)
    if difference is not None:
        return difference.causes, difference.raises, difference.why
    return case.causes, case.raises, case.why


def families_caught(rows, differences: dict) -> set:
    """The check families that some row of `rows` must fail under the strategy."""
    return set().union(*(expectation(row, case, differences)[0] for row, case in zip(rows, matrix_rows(rows))))


def matrix_rows(rows) -> list:
    """The `Case` of each `module:function` row in `rows`, from broken_pipelines' CASES."""
    import importlib

    cases = []
    for row in rows:
        module, function = row.split(":")
        module = importlib.import_module(f"broken_pipelines.{module}")
        factory = getattr(module, function)
        cases.append(next(case for case in module.CASES if case.pipeline is factory))
    return cases


def judge(rows: tuple, differences: dict, stdout: str) -> dict:
    """Row -> the problems with its `RESULT:` lines in a child's `stdout` ([] where it failed exactly what it
    must, with the cause in each message); also row -> seconds under "seconds"."""
    import json
    import re

    results, seconds = {}, {}
    for line in stdout.splitlines():
        if line.startswith("RESULT: {"):
            record = json.loads(line.removeprefix("RESULT: "))
            if "seconds" in record:
                seconds[record["row"]] = record["seconds"]
            else:
                results.setdefault(record["row"], {})[record["check"]] = record
    from pipeline_checks.checks import FAMILIES

    verdicts = {"seconds": seconds}
    for row, case in zip(rows, matrix_rows(rows)):
        causes, raises, why = expectation(row, case, differences)
        checks = results.get(case.id, {})
        shown = "\n".join(f"  {c}: {r['outcome']}: {r['message'][:600]}" for c, r in checks.items())
        problems = []
        if sorted(checks) != sorted(FAMILIES):
            problems.append(f"checks reported: {sorted(checks)}")
        for name, record in checks.items():
            if record["outcome"] == "crashed":
                problems.append(f"{name} crashed:\n{record['message']}")
            elif record["outcome"] == "raised" and not (raises and re.search(raises, record["message"])):
                problems.append(f"{name} raised: {record['message']}")
        if raises and not any(r["outcome"] == "raised" for r in checks.values()):
            problems.append(f"expected fit to raise {raises!r} ({why})")
        failing = {name for name, record in checks.items() if record["outcome"] == "failed"}
        if failing != set(causes):
            problems.append(f"failed {sorted(failing)}, expected {sorted(causes)} {why}".rstrip())
        for name, cause in causes.items():
            if name in checks and not re.search(cause, checks[name]["message"]):
                problems.append(f"{name} does not name the cause {cause!r}")
        verdicts[case.id] = [f"{p}\n{shown}" for p in problems]
    return verdicts


def under_scope(case, scope):
    """`case`'s pipeline with `build_model` run inside `scope()`: the model built and compiled there,
    as Keras' distributed training guide writes it (`with strategy.scope(): model = ...; model.compile(...)`)."""
    import dataclasses

    pipeline = case.pipeline()
    build_model = pipeline.build_model

    def build():
        with scope():
            return build_model()

    return dataclasses.replace(pipeline, build_model=build)


def print_every_check_as_json(row: str, pipeline) -> None:
    """Run the nine checks on `pipeline`, one `RESULT: {"row", "check", "outcome", "message"}` JSON line each:
    outcome passed, failed, raised (a PipelineRunError: the pipeline's own code failed) or crashed (any other
    exception, with its traceback: a check's own bug)."""
    import json
    import traceback

    from pipeline_checks.checks import all_checks
    from pipeline_checks.errors import PipelineRunError
    from pipeline_checks.model import compat
    from pipeline_checks.run.training import forget_shared_runs

    try:
        for name, check in all_checks().items():
            try:
                result = check(pipeline)
                outcome, message = ("passed" if result.passed else "failed"), str(result)
            except PipelineRunError as error:
                outcome, message = "raised", str(error)
            except Exception:  # noqa: BLE001 - reported to the parent, which fails on it
                outcome, message = "crashed", traceback.format_exc()
            line = {"row": row, "check": name, "outcome": outcome, "message": message}
            print(f"RESULT: {json.dumps(line)}", flush=True)
    finally:
        forget_shared_runs(pipeline)
        compat.keras().backend.clear_session()


def matrix_rows_under_mirrored_strategy(devices: int, rows=MIRRORED_ROWS) -> None:
    """Each of `rows` built under `tf.distribute.MirroredStrategy` over `devices` logical CPUs, the nine
    checks on each: one JSON `RESULT:` line per (row, check), then one `RESULT: {"row", "seconds"}` per row."""
    import json
    import time

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])
    for case in matrix_rows(rows):
        start = time.perf_counter()
        pipeline = under_scope(case, strategy.scope)
        print_every_check_as_json(pipeline.name, pipeline)
        seconds = {"row": pipeline.name, "seconds": round(time.perf_counter() - start, 1)}
        print(f"RESULT: {json.dumps(seconds)}", flush=True)


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
