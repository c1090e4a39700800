"""Every difference between Keras 2 (tf.keras), Keras 3 and its backends, in one place.

Nothing is imported at module level: callers pay for Keras only when they use it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


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


def from_keras(defined) -> bool:
    """Whether a class or function is Keras' (or TensorFlow's) own, not a user's."""
    return getattr(defined, "__module__", "").split(".")[0] in ("keras", "tf_keras", "tensorflow")


def backend() -> str:
    """The Keras backend name; Keras 2 always runs on TensorFlow."""
    k = keras()
    return k.backend.backend() if is_keras3() else "tensorflow"


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


def set_random_seed(seed: int, keep_compiled: bool = False) -> None:
    """Seed Python, NumPy and the backend, as `keras.utils.set_random_seed` does.

    `keep_compiled=True`, where `keeps_compiled_functions()`, seeds the same generators but
    leaves TensorFlow's kernel cache alone (see `_seed_keeping_kernels`): the traced training
    step of a model already fitted then runs again at once, instead of being instantiated and
    optimized anew (seconds for a Keras application). The kernels of stateful random ops
    (`tf.random.uniform` without a Keras SeedGenerator) then keep their state, so a caller
    must check what it computes under it and redo it with a plain seed where it differs.
    """
    if keep_compiled and keeps_compiled_functions():
        _seed_keeping_kernels(seed)
    else:
        keras().utils.set_random_seed(seed)


def keeps_compiled_functions() -> bool:
    """Whether `set_random_seed(seed, keep_compiled=True)` can seed without clearing TensorFlow's
    kernel cache: Keras 3 on TensorFlow, whose random ops are stateless ops fed by SeedGenerator
    variables. Elsewhere it seeds in full: Keras 2's random layers and initializers draw from
    stateful kernels (its RandomGenerator's default "legacy_stateful"), which only the clear
    resets; JAX and torch have no TensorFlow functions to lose."""
    if not is_keras3() or backend() != "tensorflow":
        return False
    from tensorflow.python import pywrap_tfe

    return hasattr(pywrap_tfe, "TFE_ContextClearCaches")


def _seed_keeping_kernels(seed: int) -> None:
    """`keras.utils.set_random_seed(seed)`, all of it but the kernel-cache clear of `tf.random.set_seed`.

    `tf.random.set_seed` calls `context._set_global_seed` (tensorflow/python/eager/context.py),
    which sets `_seed` (the global seed) and `_rng = random.Random(seed)` (the source of eager
    ops' operation seeds), then calls `pywrap_tfe.TFE_ContextClearCaches` "to reset any existing
    seeds": that drops every cached kernel, the instantiations of traced `tf.function`s included,
    so their next call instantiates and optimizes their graphs again. It retraces nothing (their
    tracing count and Keras' `train_function` stay the same). Only that call is skipped here,
    so every seed Keras sets (Python, NumPy, its global SeedGenerator, TensorFlow's global seed
    and operation-seed counter) is set exactly as the installed Keras sets it.
    """
    from tensorflow.python import pywrap_tfe

    clear = pywrap_tfe.TFE_ContextClearCaches
    pywrap_tfe.TFE_ContextClearCaches = lambda handle: None  # looked up at each call by context.py
    try:
        keras().utils.set_random_seed(seed)
    finally:
        pywrap_tfe.TFE_ContextClearCaches = clear


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
    import tensorflow as tf

    return (layer, *bases, tf.compat.v1.keras.layers.BatchNormalization)


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


@contextlib.contextmanager
def variables_left_uninitialized():
    """Create Keras variables without computing their initial values, for a model that is only looked at.

    Keras 3 defers a variable's initializer inside `StatelessScope(initialize_variables=False)`
    and lists the variable to initialize later; that list is put back as it was afterwards, so
    the variables made here are never initialized and go with their model. Building an
    application so costs its layers, not its 20 to 90 MB of random weights. Keras 2 (and a
    Keras 3 without that argument) initializes them as usual.
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.backend.common.stateless_scope import StatelessScope
    except ImportError:
        StatelessScope = None  # noqa: N806 - Keras 2
    if (
        StatelessScope is None
        or not is_keras3()
        or "initialize_variables" not in inspect.signature(StatelessScope).parameters
    ):
        yield
        return
    pending = list(global_state.get_global_attribute("uninitialized_variables", None) or [])
    try:
        with StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def draws_random_numbers(layer) -> bool:
    """Whether a layer draws random numbers: a Keras 3 SeedGenerator of its own, or Keras 2's generator."""
    return bool(getattr(layer, "_seed_generators", None)) or getattr(layer, "_random_generator", None) is not None


def random_generator_states(model) -> list:
    """The state variables of Keras 2's `tf.random.Generator`s in the model's layers (e.g.
    RandomFlip's), which `model.variables` leaves out; Keras 3 tracks its SeedGenerator states
    as variables, so there this is empty."""
    states, pending, seen = [], [model], set()
    while pending:
        layer = pending.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if generator is not None and hasattr(generator, "state"):
            states.append(generator.state)
        pending.extend(sublayers(layer))
    return states


def compute_loss(model, x, y, y_pred) -> float:
    """The compiled loss of `y_pred` against `y`, regularization losses included, as evaluate adds it."""
    return float(loss_tensor(model, x, y, y_pred, training=False))


def loss_tensor(model, x, y, y_pred, training: bool):
    """The compiled loss as a backend tensor (differentiable), regularization included."""
    if not is_keras3():
        return model.compute_loss(*_tensors(x, y, y_pred), None)
    if "training" in inspect.signature(model.compute_loss).parameters:  # Keras >= 3.3
        return model.compute_loss(x=x, y=y, y_pred=y_pred, training=training)
    return model.compute_loss(x=x, y=y, y_pred=y_pred)


def update_compiled_metrics(model, x, y, y_pred) -> dict:
    """Update the compiled metrics' states with one batch and return their results."""
    if not is_keras3():
        x, y, y_pred = _tensors(x, y, y_pred)
    results = model.compute_metrics(x, y, y_pred, None)
    return {name: float(value) for name, value in results.items()}


def _tensors(*arrays):
    """Keras 2's compiled loss and metrics take tensors only (they read `.shape.rank`)."""
    import tensorflow as tf

    return tuple(tf.nest.map_structure(tf.convert_to_tensor, a) for a in arrays)  # dicts per output too


def metric_variables(model) -> list:
    """The state variables of the model's compiled metrics and loss trackers."""
    if hasattr(model, "metrics_variables"):
        return list(model.metrics_variables)
    return [v for metric in model.metrics for v in metric.variables]


def optimizer_variables(optimizer) -> list:
    """An optimizer's variables: a property in Keras 3, a method in Keras 2's optimizers."""
    found = optimizer.variables
    return list(found() if callable(found) else found)


def build_optimizer(optimizer, variables, model=None) -> None:
    """Create the optimizer's state (step count, slots) now, as its first step would: inside the
    distribution strategy `model` was built under, as fit builds it (Adam's slots created outside
    a MirroredStrategy are not the ones its replicas read: fit raised "no attribute '_momentums'")."""
    with distribution_scope(model):
        _build_optimizer(optimizer, variables)


def distribution_scope(model):
    """The scope of the `tf.distribute` strategy `model` was built under; a no-op without one."""
    strategy = getattr(model, "distribute_strategy", None) if model is not None else None
    return strategy.scope() if hasattr(strategy, "scope") else contextlib.nullcontext()


def _build_optimizer(optimizer, variables) -> None:
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


def replicas(model) -> int:
    """How many replicas the model's distribution strategy trains on (1 without one)."""
    strategy = getattr(model, "distribute_strategy", None) or getattr(model, "_distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def to_numpy(value) -> np.ndarray:
    """A NumPy copy of a variable or tensor of any backend."""
    import numpy as np

    if is_keras3():
        return np.array(keras().ops.convert_to_numpy(value))
    return np.array(value.numpy() if hasattr(value, "numpy") else value)


def outputs_to_numpy(outputs):
    """A model's outputs as NumPy: one array, or a dict or list of them for a model with several outputs."""
    if isinstance(outputs, dict):
        return {name: to_numpy(value) for name, value in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [to_numpy(value) for value in outputs]
    return to_numpy(outputs)


def supports_synchronized_batchnorm() -> bool:
    """`BatchNormalization(synchronized=True)` exists in Keras 3 on the TensorFlow backend only."""
    return is_keras3() and backend() == "tensorflow"


def variable_path(variable) -> str:
    """A variable's unique name: its path in Keras 3 ("dense/kernel"), its name in Keras 2."""
    return getattr(variable, "path", None) or variable.name
