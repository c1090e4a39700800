"""Reproducibility: same-seed runs that differ, and models that do not survive save and load.

Each pipeline is `small_pipeline()` with one change; the save/load ones put a custom layer
in front of the same CNN (nested, so BatchNormalization sits in a submodel), and that layer
rescales or standardizes raw pixels. The custom layers are defined (and registered) once, on
first use, so importing this module imports no Keras.
"""

from __future__ import annotations

import functools
import time
from types import SimpleNamespace

import numpy as np

from broken_pipelines.common import CLASSES, DATA, broken, correct, small_pipeline
from pipeline_checks.model import compat
from pipeline_checks.pipelines.pipeline import to_float
from pipeline_checks.testing.small_models import small_bn_cnn

PACKAGE = "broken_pipelines.reproducibility"  # registered names: "<PACKAGE>>Rescale"
# The model scales the pixels itself. Both paths are named: replacing only preprocess_train
# in small_pipeline() would keep its preprocess_infer (pixels / 255).
RAW_PIXELS = {"preprocess_train": to_float, "preprocess_infer": to_float}


def scaled(images):
    return images.astype("float32") / 255.0  # small_pipeline()'s preprocessing


# Determinism --------------------------------------------------------------------------


def unseeded_augmentation():
    """Pixel noise as augmentation, from a generator seeded by the operating system."""

    def noisy(images):
        rng = np.random.default_rng()  # the bug: no seed
        return scaled(images) + rng.normal(0, 0.02, images.shape).astype("float32")

    return small_pipeline("unseeded-augmentation", preprocess_train=noisy, preprocess_infer=scaled)


def seeded_augmentation():
    """The correct twin: the same noise, from a seeded generator."""

    def noisy(images):
        rng = np.random.default_rng(0)
        return scaled(images) + rng.normal(0, 0.02, images.shape).astype("float32")

    return small_pipeline("seeded-augmentation", preprocess_train=noisy, preprocess_infer=scaled)


def augmentation_layer():
    """A correct twin: a Keras augmentation layer in the model, which keras.utils.set_random_seed
    seeds. On Keras 2 its tf.random.Generator lives outside model.variables; a replay that left
    it alone continued its stream and failed this correct pipeline."""
    return _rescaled("augmentation-layer", lambda _custom: compat.keras().layers.RandomFlip("horizontal"))


def unseeded_data_order():
    """The loader shuffles the file list with an unseeded generator; fit does not shuffle.

    Each class's files are shuffled and then dealt out in turn (0, 1, 2, 0, ...), so every
    batch of 4 mixes the classes whatever the draw: a class-sorted batch would give BatchNorm
    one-class batch statistics, a second bug that other checks rightly catch at some draws.
    """

    def read():
        rng = np.random.default_rng()  # the bug: no seed
        by_class = [rng.permutation(np.flatnonzero(DATA.labels == c)) for c in range(len(DATA.class_names))]
        order = np.stack(by_class, axis=1).ravel()
        return DATA.images[order], DATA.labels[order], DATA.class_names

    return small_pipeline(
        "unseeded-data-order", data=read, fit_kwargs={"epochs": 15, "batch_size": 4, "shuffle": False}
    )


def clock_seeded_noise_layer():
    """A noise layer in the model whose SeedGenerator is seeded from the clock."""
    return small_pipeline(
        "clock-seeded-noise-layer", build_model=_model_behind(lambda layers: layers.ClockSeededNoise(0.05))
    )


# Save and load ------------------------------------------------------------------------


def unregistered_custom_layer():
    """A rescaling layer never registered with keras.saving: the .keras file does not load."""
    return _rescaled("unregistered-custom-layer", lambda layers: layers.UnregisteredRescale(1 / 255))


def get_config_omits_argument():
    """A rescaling layer whose get_config leaves out `factor`: it loads with factor 1."""
    return _rescaled("get-config-omits-argument", lambda layers: layers.ForgetfulRescale(1 / 255))


def get_config_not_overridden():
    """A rescaling layer built from an array, with no get_config: Keras cannot record the array, so model.save fails."""
    return _rescaled("get-config-not-overridden", lambda layers: layers.ArrayRescale(np.full(3, 1 / 255, "float32")))


def registered_custom_layer():
    """The correct twin: registered, with a complete get_config."""
    return _rescaled("registered-custom-layer", lambda layers: layers.Rescale(1 / 255))


def state_outside_variables():
    """A standardization layer that keeps the mean and std from adapt() in plain NumPy arrays."""

    def standardize(layers):
        layer = layers.PlainStandardize()
        layer.adapt(DATA.images.astype("float32"))
        return layer

    return small_pipeline("state-outside-variables", build_model=_model_behind(standardize), **RAW_PIXELS)


CASES = [
    broken(
        unseeded_augmentation,
        "augmentation from an unseeded generator",
        determinism=r"preprocess_train returned different inputs for the same images",
    ),
    correct(seeded_augmentation),
    broken(
        unseeded_data_order,
        "loader shuffles with an unseeded generator",
        determinism=r"`data` returned different images or another order",
    ),
    broken(
        clock_seeded_noise_layer,
        "noise layer seeded from the clock",
        determinism=r"(?s)from the first training step on.*ClockSeededNoise",
    ),
    broken(
        unregistered_custom_layer,
        "custom layer not registered as serializable",
        save_load=r"(?s)the custom class 'UnregisteredRescale' is not registered.*register_keras_serializable",
    ),
    broken(
        get_config_omits_argument, "get_config omits a constructor argument", save_load=r"get_config\(\) omits 'factor'"
    ),
    broken(
        get_config_not_overridden,
        "custom layer with an array argument and no get_config",
        save_load=r"(?s)the \.keras (file|folder) does not save.*does not override get_config",
    ),
    broken(
        state_outside_variables,
        "layer state in plain NumPy arrays, not variables",
        save_load=r"'mean' is a plain attribute, not in a Keras variable",
    ),
    correct(registered_custom_layer),
]


def _rescaled(name, front):
    return small_pipeline(name, build_model=_model_behind(front), **RAW_PIXELS)


def _model_behind(front):
    """build_model: the layer `front(custom_layers())`, then the small CNN as a nested model."""

    def build_model():
        keras = compat.keras()
        inputs = keras.Input((16, 16, 3))
        outputs = small_bn_cnn((16, 16, 3), classes=CLASSES)(front(custom_layers())(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    return build_model


@functools.cache
def custom_layers():
    """The custom layers, defined and registered once per process (registering twice is an error)."""
    keras = compat.keras()
    register = keras.saving.register_keras_serializable(package=PACKAGE)

    class Rescale(keras.layers.Layer):
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = float(factor)

        def call(self, inputs):
            return inputs * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    class UnregisteredRescale(Rescale):
        pass

    class ForgetfulRescale(Rescale):
        def get_config(self):
            return keras.layers.Layer.get_config(self)  # the bug: factor is missing

    class ArrayRescale(keras.layers.Layer):
        def __init__(self, scale, **kwargs):
            super().__init__(**kwargs)
            self.scale = np.asarray(scale, "float32")  # the bug: no get_config, and an argument no config can hold

        def call(self, inputs):
            return inputs * self.scale

    class PlainStandardize(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.mean, self.std = np.zeros(3, "float32"), np.ones(3, "float32")

        def adapt(self, images):
            # the bug: plain arrays, not self.add_weight(..., trainable=False), so no file carries them
            self.mean = images.mean(axis=(0, 1, 2)).astype("float32")
            self.std = images.std(axis=(0, 1, 2)).astype("float32")

        def call(self, inputs):
            return (inputs - self.mean) / self.std

    class ClockSeededNoise(keras.layers.Layer):
        def __init__(self, stddev=0.05, **kwargs):
            super().__init__(**kwargs)
            self.stddev = float(stddev)
            self.seed_generator = compat.seed_generator(time.time_ns() % 2**31)  # the bug: a seed per run

        def call(self, inputs, training=False):
            if not training:
                return inputs
            return inputs + compat.random_normal_like(inputs, stddev=self.stddev, generator=self.seed_generator)

        def get_config(self):
            return {**super().get_config(), "stddev": self.stddev}

    layers = (Rescale, ForgetfulRescale, ArrayRescale, PlainStandardize, ClockSeededNoise)
    return SimpleNamespace(UnregisteredRescale=UnregisteredRescale, **{cls.__name__: register(cls) for cls in layers})
