"""Regression pipelines: float targets, a linear output, a regression loss, declared as arrays
`(inputs, targets)`, as `fit(x, y)` takes them.

Two correct rows, which the broken regression rows (regression_*.py) vary:

- `regression-fuel-efficiency`: TensorFlow's "Basic regression: Predict fuel efficiency" tutorial
  (tensorflow/docs, site/en/tutorials/keras/regression.ipynb; tensorflow.org/tutorials/keras/regression)
  as written: a `Normalization` layer adapted to the training features, Dense(64, relu) twice, Dense(1),
  `loss="mean_absolute_error"`, Adam(0.001), 100 epochs with `validation_split=0.2`. Its data here are
  synthetic rows with the Auto MPG table's 9 columns on their own scales (cylinders, displacement,
  horsepower, weight, acceleration, model year, three origin flags) and a miles-per-gallon target.
- `regression-cnn`: the small Conv-BN CNN of the image rows with one linear unit, mean squared error
  and a mean absolute error metric, regressing a value of each image (the value its pattern stands
  for, in standard units) in 45 full-batch steps, its BatchNorm statistics recalibrated after fit as
  the image rows' are. Not its mean brightness: BatchNorm's batch statistics subtract a batch's mean
  brightness, so with batches of 4 fit's numbers (R² 0.89) held for each batch's company alone
  (evaluate's R² 0.21 on the same images at seed 0), and the agreement check fails that, rightly.
"""

from __future__ import annotations

import numpy as np

from broken_pipelines.common import DATA, correct, recalibrate_after_fit
from pipeline_checks.pipelines.pipeline import Pipeline

FEATURES = 9  # cylinders, displacement, horsepower, weight, acceleration, model year, Europe, Japan, USA


def cars(count=160, seed=0):
    """Rows like the Auto MPG table's, and a miles-per-gallon target that falls with weight and power."""
    rng = np.random.default_rng(seed)
    cylinders = rng.choice([4, 6, 8], count, p=[0.5, 0.25, 0.25]).astype(np.float32)
    displacement = cylinders * rng.uniform(20, 45, count)
    horsepower = displacement * rng.uniform(0.4, 0.7, count) + rng.normal(0, 8, count)
    weight = 1500 + 9 * displacement + rng.normal(0, 250, count)
    acceleration = rng.uniform(8, 25, count)
    year = rng.integers(70, 83, count).astype(np.float32)
    origin = np.eye(3, dtype=np.float32)[rng.integers(0, 3, count)]
    columns = [cylinders, displacement, horsepower, weight, acceleration, year]
    rows = np.column_stack([*columns, origin]).astype(np.float32)
    mpg = 46 - 0.006 * weight - 0.04 * horsepower + 0.5 * (year - 70) + rng.normal(0, 1.5, count)
    return rows, mpg.astype(np.float32)


ROWS, MPG = cars()


def fuel_efficiency_model(learning_rate=0.001, loss="mean_absolute_error", activation=None):
    """The tutorial's `build_and_compile_model(normalizer)`: its normalizer adapted to the rows."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(ROWS)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            normalizer,
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation=activation),
        ]
    )
    model.compile(loss=loss, optimizer=keras.optimizers.Adam(learning_rate))
    return model


def fuel_efficiency(name="regression-fuel-efficiency", rows=ROWS, targets=MPG, **changes) -> Pipeline:
    pipeline = dict(
        name=name,
        build_model=fuel_efficiency_model,
        data=(rows, targets),
        fit_kwargs={"epochs": 100, "validation_split": 0.2},
    )
    return Pipeline(**{**pipeline, **changes})


def brightness(images) -> np.ndarray:
    """Each image's mean brightness in standard units: the value the CNN rows regress."""
    means = np.asarray(images, np.float32).mean(axis=(1, 2, 3))
    return ((means - means.mean()) / means.std()).astype(np.float32)


BRIGHTNESS = brightness(DATA.images)
# The value each image's pattern stands for (its class, -1.22, 0 or 1.22 in standard units): what the CNN rows regress.
PATTERN_VALUE = ((DATA.labels - DATA.labels.mean()) / DATA.labels.std()).astype(np.float32)


def regression_cnn_model(learning_rate=0.01, loss="mse", activation=None):
    """The small Conv-BN CNN with one linear unit (or `activation`) in place of its softmax."""
    from pipeline_checks.model import compat
    from pipeline_checks.testing.small_models import small_bn_cnn

    keras = compat.keras()
    trunk = small_bn_cnn((16, 16, 3), classes=2)
    features = trunk.layers[-2].output
    model = keras.Model(trunk.input, keras.layers.Dense(1, activation=activation, name="value")(features))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["mae"])
    return model


def regression_cnn(name="regression-cnn", targets=PATTERN_VALUE, **changes) -> Pipeline:
    pipeline = dict(
        name=name,
        build_model=regression_cnn_model,
        data=(DATA.images, targets),
        preprocess_train=lambda images: images.astype("float32") / 255.0,
        fit_kwargs={"epochs": 45, "batch_size": 12},  # 45 steps, as the image rows take (15 epochs of 3)
        after_fit=recalibrate_after_fit,
    )
    if "preprocess_train" in changes:
        changes.setdefault("preprocess_infer", None)
    return Pipeline(**{**pipeline, **changes})


CASES = [
    correct(fuel_efficiency, "none (TensorFlow's basic regression tutorial, as written)"),
    correct(regression_cnn, "none (the small Conv-BN CNN regressing a value per image, BN recalibrated)"),
]
