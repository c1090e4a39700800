"""model.random_layers: the Keras random layers a user's function reaches without building them."""

import functools

import pytest

from pipeline_checks.model import compat
from pipeline_checks.model.random_layers import random_layers_reached_by

keras = compat.keras()
FLIPS = [keras.layers.RandomFlip("horizontal", name="flip")]  # keras.io's module-level list
AUGMENTATION = keras.Sequential([keras.layers.RandomRotation(0.1, name="turn")])
SCALE = keras.layers.Rescaling(1 / 255)  # no randomness


def through_a_list(dataset):
    def augment(images):
        for layer in FLIPS:
            images = layer(images)
        return images

    return dataset.map(lambda x, y: (augment(x), y))


def through_a_model_and_a_helper(dataset):
    return dataset.map(lambda x, y: (SCALE(AUGMENTATION(x)), y))


def built_inside(dataset):
    flip = keras.layers.RandomFlip("horizontal")
    return dataset.map(lambda x, y: (flip(x), y))


def test_layers_reached_through_globals_closures_and_models_are_named():
    assert random_layers_reached_by(through_a_list) == ["RandomFlip 'flip' (FLIPS)"]
    assert random_layers_reached_by(through_a_model_and_a_helper) == ["RandomRotation 'turn' (AUGMENTATION)"]
    layer = keras.layers.GaussianNoise(0.1, name="noise")
    assert random_layers_reached_by(lambda x: layer(x)) == ["GaussianNoise 'noise' (layer)"]
    assert random_layers_reached_by(functools.partial(lambda x, extra: x, extra=FLIPS)) == [
        "RandomFlip 'flip' (a partial's argument)"
    ]


def test_layers_built_inside_or_without_randomness_are_not():
    assert random_layers_reached_by(built_inside) == []
    assert random_layers_reached_by(lambda x: SCALE(x)) == []
    assert random_layers_reached_by(len) == []  # a builtin has no code to read


def test_outside_layers_restart_where_the_first_run_met_them():
    import numpy as np

    from pipeline_checks.model.random_layers import restart_outside_layers

    tf = pytest.importorskip("tensorflow")
    if not compat.is_keras3():
        pytest.skip("Keras 2's random layers keep their generator state outside Keras variables: left as it is")
    images = tf.data.Dataset.from_tensor_slices((np.arange(48, dtype="float32").reshape(4, 2, 2, 3), [0, 1, 0, 1]))

    def a_run():
        assert restart_outside_layers([None, through_a_list]) == ["RandomFlip 'flip' (FLIPS)"]
        return [x for x, _ in through_a_list(images.batch(4)).as_numpy_iterator()]

    state = [v.numpy().copy() for v in FLIPS[0].variables]
    first, second = a_run(), a_run()
    np.testing.assert_array_equal(first[0], second[0])  # the second run draws the first run's flips
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(state, FLIPS[0].variables))  # a run advances it
