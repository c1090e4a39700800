"""model.heads: what a fresh classifier's head shows, read from tiny models (no training)."""

import math

import numpy as np
import pytest
from ml_dtypes import bfloat16

from pipeline_checks.model import compat
from pipeline_checks.model.heads import (
    SUMS_TO_ONE,
    HeadOutputs,
    head_gain,
    output_activation,
    precision_of,
    regularization_loss,
    rescaling_layers,
    softmax_over_one_unit,
)

SHAPE = (4, 4, 3)


def functional(*layers, op=None):
    keras = compat.keras()
    inputs = keras.Input(SHAPE)
    x = keras.layers.Flatten()(inputs)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, op(x) if op else x)


def nested_head():
    keras = compat.keras()
    head = keras.Sequential([keras.Input((48,)), keras.layers.Dense(3, activation="sigmoid")])
    return functional(head)


def subclassed():
    keras = compat.keras()

    class Head(keras.Model):
        def __init__(self):
            super().__init__()
            self.flatten = keras.layers.Flatten()
            self.dense = keras.layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.dense(self.flatten(x))

    model = Head()
    model(np.zeros((1, *SHAPE), np.float32))
    return model


@pytest.mark.parametrize(
    "build, activation",
    [
        (lambda: functional(compat.keras().layers.Dense(3, activation="softmax")), "softmax"),
        (lambda: functional(compat.keras().layers.Dense(3), compat.keras().layers.Softmax()), "softmax"),
        (lambda: functional(compat.keras().layers.Dense(3)), "linear"),
        (nested_head, "sigmoid"),
        (lambda: functional(compat.keras().layers.Dense(3), op=compat.keras().activations.sigmoid), None),
        (subclassed, None),
    ],
    ids=["dense-softmax", "softmax-layer", "logits", "nested-model", "op-after-last-layer", "subclassed"],
)
def test_output_activation(build, activation):
    assert output_activation(build()) == activation


def test_head_outputs_tell_softmax_rows_from_logits():
    x = np.random.default_rng(0).normal(size=(5, *SHAPE)).astype(np.float32)
    softmax = HeadOutputs.of(functional(compat.keras().layers.Dense(3, activation="softmax")), x)
    logits = HeadOutputs.of(functional(compat.keras().layers.Dense(3)), x)
    assert softmax.width == 3 and softmax.softmax_rows and not logits.softmax_rows
    assert softmax.described().endswith(", last layer activation softmax")


@pytest.mark.parametrize(
    "values, activation, probabilities",
    [
        ([[0.2], [0.7]], "sigmoid", True),
        ([[0.2], [0.7]], "linear", False),  # logits may start inside [0, 1]: the layer decides
        ([[0.2], [0.7]], None, None),  # an unknown layer: undecided
        ([[-0.5], [0.7]], "sigmoid", False),  # outside [0, 1] they are logits whatever the layer
    ],
)
def test_sigmoid_probabilities(values, activation, probabilities):
    assert HeadOutputs(np.asarray(values, dtype=np.float64), activation).sigmoid_probabilities is probabilities


def test_head_gain_is_std_times_sqrt_fan_in():
    keras = compat.keras()
    model = functional(keras.layers.Dense(3, kernel_initializer=keras.initializers.Constant(2.0)))
    assert head_gain(model) == 0.0  # a constant kernel has no spread
    model = functional(keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=0)))
    assert head_gain(model) == pytest.approx(math.sqrt(48), rel=0.2)
    assert head_gain(functional(keras.layers.Dense(3), keras.layers.Softmax())) is None  # no kernel in the last layer


def test_rescaling_layers_and_regularization_loss():
    keras = compat.keras()
    inputs = keras.Input(SHAPE)
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Flatten()(keras.layers.BatchNormalization(name="bn")(x))
    outputs = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(1.0), name="head")(x)
    model = keras.Model(inputs, outputs)
    assert rescaling_layers(model) == ["rescale", "bn"]
    kernel = compat.to_numpy(model.get_layer("head").kernel)
    assert regularization_loss(model) == pytest.approx(float(np.sum(kernel**2)), rel=1e-5)
    assert rescaling_layers(functional(keras.layers.Dense(3))) == []


# -- the precision the outputs were computed in --------------------------------------------


def on_grid(values, dtype):
    """`values` rounded to `dtype` and widened back to float32, as a float32 layer casts a low-precision output."""
    return np.asarray(values, dtype=np.float32).astype(dtype).astype(np.float32)


ROWS = np.random.default_rng(0).uniform(0.05, 0.9, size=(6, 3))


@pytest.mark.parametrize(
    "values, precision",
    [
        (ROWS.astype(np.float32), "float32"),
        (ROWS, "float64"),
        (on_grid(ROWS, np.float16), "float16"),
        (on_grid(ROWS, bfloat16), "bfloat16"),
        (ROWS.astype(np.float16), "float16"),
        (ROWS.astype(bfloat16), "bfloat16"),
        (np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32), "float32"),  # saturated: on every grid
        (np.append(on_grid(ROWS, bfloat16), np.float32(np.nan)), "float32"),
    ],
    ids=["float32", "float64", "float16-cast-up", "bfloat16-cast-up", "float16", "bfloat16", "saturated", "nan"],
)
def test_precision_of(values, precision):
    assert precision_of(values) == precision


@pytest.mark.parametrize(
    "miss, precision, softmax_rows",
    [
        (0.0039, "bfloat16", True),  # 0.9941..1.0039: the bfloat16 head of issue 36
        (0.0039, "float32", False),
        (0.0030, "float16", True),
        (0.0100, "float16", False),
        (0.0500, "bfloat16", False),
        (0.0005, "float32", True),
    ],
)
def test_sums_to_one_follows_the_precision(miss, precision, softmax_rows):
    values = np.array([[0.2, 0.3, 0.5 - miss], [0.2, 0.3, 0.5 + miss]])
    outputs = HeadOutputs(values, "softmax", precision)
    assert outputs.softmax_rows is softmax_rows
    assert outputs.sums_to_one >= SUMS_TO_ONE


def test_a_mixed_bfloat16_softmax_head_is_read_as_probabilities_and_its_logits_are_not():
    keras = compat.keras()
    x = np.random.default_rng(0).normal(size=(8, *SHAPE)).astype(np.float32)
    softmax = HeadOutputs.of(functional(keras.layers.Dense(3, activation="softmax", dtype="mixed_bfloat16")), x)
    logits = HeadOutputs.of(functional(keras.layers.Dense(3, dtype="mixed_bfloat16")), x)
    assert softmax.precision == logits.precision == "bfloat16"
    assert softmax.softmax_rows and not logits.softmax_rows
    assert softmax.described().endswith(", computed in bfloat16, last layer activation softmax")
    assert keras.mixed_precision.global_policy().name == "float32"  # a layer's dtype leaves the global policy


# -- a softmax over one unit ---------------------------------------------------------------


@pytest.mark.parametrize(
    "build, constant",
    [
        (lambda: functional(compat.keras().layers.Dense(1, activation="softmax")), True),
        (lambda: functional(compat.keras().layers.Dense(1), compat.keras().layers.Softmax()), True),
        (lambda: functional(compat.keras().layers.Dense(1), op=compat.keras().activations.softmax), True),
        (lambda: functional(compat.keras().layers.Dense(1, activation="sigmoid")), False),
        (lambda: functional(compat.keras().layers.Dense(1), op=compat.keras().activations.sigmoid), False),
        (lambda: functional(compat.keras().layers.Dense(3, activation="softmax")), False),
    ],
    ids=["dense-softmax", "softmax-layer", "softmax-op", "sigmoid", "sigmoid-op", "3-unit-softmax"],
)
def test_softmax_over_one_unit(build, constant):
    model = build()
    x = np.random.default_rng(0).normal(size=(5, *SHAPE)).astype(np.float32)
    assert softmax_over_one_unit(model, x, HeadOutputs.of(model, x)) is constant
