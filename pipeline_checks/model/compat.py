"""Every difference between Keras 2 (tf.keras), Keras 3 and its backends, in one place.

Nothing is imported at module level: callers pay for Keras only when they use it.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys


def uses_legacy_keras() -> bool:
    """True when TF_USE_LEGACY_KERAS asks TensorFlow for the `tf_keras` package (Keras 2)."""
    return os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")


def keras():
    """The Keras API in use: `tf_keras` under TF_USE_LEGACY_KERAS, `tf.keras` under Keras 2
    (TF <= 2.15, whose top-level `keras` package is the implementation, not the public API),
    else `keras`."""
    if uses_legacy_keras():
        import tf_keras

        return tf_keras
    import keras as keras_module

    if int(keras_module.__version__.split(".")[0]) < 3:
        import tensorflow as tf

        return tf.keras
    return keras_module


def keras_version() -> str:
    version = getattr(keras(), "__version__", None)
    if version is None:  # TF 2.15's tf.keras carries none; its `keras` package does
        import keras as keras_package

        version = keras_package.__version__
    return version


def is_keras3() -> bool:
    return int(keras_version().split(".")[0]) >= 3


def backend() -> str:
    """The Keras backend name; Keras 2 always runs on TensorFlow."""
    k = keras()
    return k.backend.backend() if is_keras3() else "tensorflow"


def installed_version(*distributions: str) -> str | None:
    """Version of the first installed distribution among `distributions`, without importing it."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tensorflow_version() -> str | None:
    module = sys.modules.get("tensorflow")
    if module is not None and hasattr(module, "__version__"):
        return module.__version__
    return installed_version("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos")


def tensorflow():
    """Import TensorFlow, or explain that this feature needs it (e.g. tf.data on the JAX backend)."""
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError(
            "This feature needs TensorFlow (tf.data, image_dataset_from_directory); "
            "install it with `pip install pipeline-checks[tf]`."
        ) from None
    return tf


def devices() -> list[str]:
    """Devices the current backend can run on, e.g. ['CPU:0', 'GPU:0']."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        found = tf.config.list_physical_devices()
        return [f"{d.device_type}:{d.name.rsplit(':', 1)[-1]}" for d in found]
    if name == "jax":
        import jax

        return [f"{d.platform.upper()}:{d.id}" for d in jax.devices()]
    if name == "torch":
        import torch

        gpus = [f"GPU:{i}" for i in range(torch.cuda.device_count())]
        return ["CPU:0", *gpus]
    return ["CPU:0"]


def gpu_available() -> bool:
    return any(d.startswith("GPU") for d in devices())


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend, as `keras.utils.set_random_seed` does."""
    keras().utils.set_random_seed(seed)


def seed_generator(seed: int):
    """A random-generator state for a layer to own: `keras.random.SeedGenerator`, or under
    Keras 2 (which has no keras.random) a `tf.random.Generator`."""
    if is_keras3():
        return keras().random.SeedGenerator(seed)
    import tensorflow as tf

    return tf.random.Generator.from_seed(seed)


def random_normal_like(inputs, stddev: float, generator):
    """Normal noise of `inputs`' shape and dtype, drawn from `generator` (`seed_generator`)."""
    if is_keras3():
        ops = keras().ops
        return keras().random.normal(ops.shape(inputs), stddev=stddev, dtype=inputs.dtype, seed=generator)
    import tensorflow as tf

    return generator.normal(tf.shape(inputs), stddev=stddev, dtype=inputs.dtype)


def batchnorm_classes() -> tuple[type, ...]:
    """Every BatchNormalization class in use: Keras 3's (synchronized or not, and the legacy
    port, a subclass); under Keras 2, the V2 layer, its base class and the V1 layer."""
    layer = keras().layers.BatchNormalization
    if is_keras3():
        return (layer,)
    bases = [c for c in layer.__mro__ if c.__name__ == "BatchNormalizationBase"]
    return (layer, *bases, legacy_batchnorm_class())


def legacy_batchnorm_class() -> type:
    """BatchNormalization that normalizes with batch statistics and updates its moving ones in
    training mode even when frozen: Keras 2's V1 layer (`tf.compat.v1.keras.layers`), or its
    port to Keras 3 (`pipeline_checks.scenarios.legacy_batchnorm`)."""
    if is_keras3():
        from pipeline_checks.scenarios.legacy_batchnorm import legacy_batchnorm_class as ported

        return ported()
    import tensorflow as tf

    return tf.compat.v1.keras.layers.BatchNormalization


def layer_input_shape(layer) -> tuple | None:
    """The shape a built layer takes, batch dimension None; None when it is not known."""
    try:
        return tuple(layer.input.shape)  # a layer of a functional model, Keras 2 and 3
    except Exception:
        pass
    shapes = getattr(layer, "_build_shapes_dict", None) or {}  # Keras 3, called outside a graph
    shape = next(iter(shapes.values()), None) or getattr(layer, "_build_input_shape", None)  # Keras 2
    return None if shape is None else tuple(shape)


def sublayers(layer) -> list:
    """The direct sublayers of a layer or model, nested models included."""
    if hasattr(layer, "_flatten_layers"):
        return list(layer._flatten_layers(include_self=False, recursive=False))
    return list(getattr(layer, "layers", []))


def compute_loss(model, x, y, y_pred) -> float:
    """The compiled loss of `y_pred` against `y`, regularization losses included, as evaluate adds it."""
    if is_keras3():
        return float(model.compute_loss(x=x, y=y, y_pred=y_pred, training=False))
    return float(model.compute_loss(*_tensors(x, y, y_pred), None))


def update_compiled_metrics(model, x, y, y_pred) -> dict:
    """Update the compiled metrics' states with one batch and return their results."""
    if not is_keras3():
        x, y, y_pred = _tensors(x, y, y_pred)
    results = model.compute_metrics(x, y, y_pred, None)
    return {name: float(value) for name, value in results.items()}


def _tensors(*arrays):
    """Keras 2's compiled loss and metrics take tensors only (they read `.shape.rank`)."""
    import tensorflow as tf

    return tuple(tf.convert_to_tensor(a) for a in arrays)


def metric_variables(model) -> list:
    """The state variables of the model's compiled metrics and loss trackers."""
    if hasattr(model, "metrics_variables"):
        return list(model.metrics_variables)
    return [v for metric in model.metrics for v in metric.variables]


def optimizer_variables(optimizer) -> list:
    """An optimizer's variables: a property in Keras 3, a method in Keras 2's optimizers."""
    found = optimizer.variables
    return list(found() if callable(found) else found)


def build_optimizer(optimizer, variables) -> None:
    """Create the optimizer's state (step count, slots) now, as its first step would."""
    if is_keras3():
        if not optimizer.built:
            optimizer.build(variables)
    elif hasattr(optimizer, "_create_all_weights"):  # Keras 2's legacy optimizers
        optimizer._create_all_weights(variables)
    elif not getattr(optimizer, "_built", False):  # Keras 2's optimizers since 2.11 set it once built
        optimizer.build(variables)


def training_steps(model) -> int | None:
    """How many optimizer steps the model has taken (= BN updates seen while trainable)."""
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    return None if iterations is None else int(iterations.numpy() if hasattr(iterations, "numpy") else iterations)


def to_numpy(value) -> "np.ndarray":
    """A NumPy copy of a variable or tensor of any backend."""
    import numpy as np

    if is_keras3():
        return np.array(keras().ops.convert_to_numpy(value))
    return np.array(value.numpy() if hasattr(value, "numpy") else value)


def supports_synchronized_batchnorm() -> bool:
    """`BatchNormalization(synchronized=True)` exists in Keras 3 on the TensorFlow backend only."""
    return is_keras3() and backend() == "tensorflow"


def device_name() -> str:
    """The name of the device training runs on, e.g. 'NVIDIA H100 80GB HBM3' or the CPU model."""
    name = backend()
    try:
        if name == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        elif name == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return device.device_kind
        elif name == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
    except Exception:  # Device details are informative only; never fail a benchmark on them.
        pass
    return _cpu_model()


def _cpu_model() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def jax_version() -> str | None:
    module = sys.modules.get("jax")
    return getattr(module, "__version__", None) or installed_version("jax")


def variable_path(variable) -> str:
    """A variable's unique name: its path in Keras 3 ("dense/kernel"), its name in Keras 2."""
    return getattr(variable, "path", None) or variable.name
