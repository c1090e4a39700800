"""The public hypothesis strategies: bad arguments, bounds of what they generate, small_bn_cnn."""

import dataclasses
import math
import sys

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pipeline_checks import make_tiny_images
from pipeline_checks.testing.small_models import small_bn_cnn
from pipeline_checks.testing.strategies import (
    COMMON_VALUE_RANGES,
    BatchNormConfig,
    batchnorm_configs,
    scale_images,
    tiny_datasets,
    value_ranges,
)

OR_STRATEGY = ", or a strategy that generates such values; received: "
VALID_CONFIG = {"momentum": 0.9, "epsilon": 1e-3, "batch_size": 2, "epochs": 1, "blocks": 1}


def draw_one(strategy):
    """Draw a value outside @given, so errors raised while drawing reach the test."""
    return find(strategy, lambda _: True, settings=settings(database=None, max_examples=1))


def row(call, message, error=InvalidArgument, id=None):
    return pytest.param(call, error, message, id=id)


@pytest.mark.parametrize(
    "call, error, message",
    [
        # tiny_datasets: fixed values are checked when the strategy is built.
        row(
            lambda: tiny_datasets(classes=1),
            "classes must be an integer of at least 2" + OR_STRATEGY + "classes=1",
            id="one-class",
        ),
        row(
            lambda: tiny_datasets(classes=2.0),
            "classes must be an integer of at least 2" + OR_STRATEGY + "classes=2.0",
            id="float-classes",
        ),
        row(
            lambda: tiny_datasets(per_class=0),
            "per_class must be an integer of at least 1" + OR_STRATEGY + "per_class=0",
            id="no-images",
        ),
        row(
            lambda: tiny_datasets(sizes=0),
            "sizes must be an integer of at least 1" + OR_STRATEGY + "sizes=0",
            id="size-zero",
        ),
        row(
            lambda: tiny_datasets(sizes=[8, 12]),
            "sizes must be an integer of at least 1"
            + OR_STRATEGY
            + "sizes=[8, 12] (to choose among several, pass st.sampled_from([8, 12]))",
            id="list-of-sizes",
        ),
        row(
            lambda: tiny_datasets(channels=2), "channels must be 1 or 3" + OR_STRATEGY + "channels=2", id="two-channels"
        ),
        row(
            lambda: tiny_datasets(kinds="faces"),
            "kinds must be one of patterns, noise, photos" + OR_STRATEGY + "kinds='faces'",
            id="unknown-kind",
        ),
        row(
            lambda: tiny_datasets(seeds=-1),
            "seeds must be an integer of at least 0" + OR_STRATEGY + "seeds=-1",
            id="negative-seed",
        ),
        row(
            lambda: tiny_datasets(kinds="photos", classes=7),
            "kinds='photos' has 6 photographs, one per class; received: classes=7",
            id="too-many-photos",
        ),
        # Generated values are checked when drawn.
        row(
            lambda: draw_one(tiny_datasets(classes=st.just(1))),
            "classes generated 1, but each value must be an integer of at least 2; received: classes=just(1)",
            id="drawn-one-class",
        ),
        row(
            lambda: draw_one(tiny_datasets(channels=st.sampled_from([2, 4]))),
            "channels generated 2, but each value must be 1 or 3; received: channels=sampled_from([2, 4])",
            id="drawn-two-channels",
        ),
        # batchnorm_configs
        row(
            lambda: batchnorm_configs(momentum=1.0),
            "momentum must be a number in [0, 1)" + OR_STRATEGY + "momentum=1.0",
            id="momentum-one",
        ),
        row(
            lambda: batchnorm_configs(momentum=-0.1),
            "momentum must be a number in [0, 1)" + OR_STRATEGY + "momentum=-0.1",
            id="negative-momentum",
        ),
        row(
            lambda: batchnorm_configs(momentum=math.nan),
            "momentum must be a number in [0, 1)" + OR_STRATEGY + "momentum=nan",
            id="nan-momentum",
        ),
        row(
            lambda: batchnorm_configs(epsilon=0),
            "epsilon must be a finite number above 0" + OR_STRATEGY + "epsilon=0",
            id="epsilon-zero",
        ),
        row(
            lambda: batchnorm_configs(epsilon=math.inf),
            "epsilon must be a finite number above 0" + OR_STRATEGY + "epsilon=inf",
            id="infinite-epsilon",
        ),
        row(
            lambda: batchnorm_configs(batch_size=0),
            "batch_size must be an integer of at least 1" + OR_STRATEGY + "batch_size=0",
            id="batch-size-zero",
        ),
        row(
            lambda: batchnorm_configs(epochs=0),
            "epochs must be an integer of at least 1" + OR_STRATEGY + "epochs=0",
            id="no-epochs",
        ),
        row(
            lambda: batchnorm_configs(blocks=True),
            "blocks must be an integer of at least 1" + OR_STRATEGY + "blocks=True",
            id="bool-blocks",
        ),
        row(
            lambda: batchnorm_configs(dropout=1),
            "dropout must be a number in [0, 1)" + OR_STRATEGY + "dropout=1",
            id="dropout-one",
        ),
        row(
            lambda: draw_one(batchnorm_configs(momentum=st.floats(1, 2))),
            "momentum generated 1.0, but each value must be a number in [0, 1); "
            "received: momentum=floats(min_value=1, max_value=2)",
            id="drawn-momentum-one",
        ),
        # Plain functions and classes raise ValueError, as Keras does.
        row(
            lambda: BatchNormConfig(**{**VALID_CONFIG, "momentum": 1.5}),
            "momentum must be a number in [0, 1); received: momentum=1.5",
            ValueError,
            id="config-momentum",
        ),
        row(
            lambda: scale_images(np.zeros(2, "uint8"), (1.0, 0.0)),
            "value_range must be (low, high) with finite numbers and low < high; received: value_range=(1.0, 0.0)",
            ValueError,
            id="reversed-range",
        ),
        row(
            lambda: scale_images(np.zeros(2, "uint8"), (0.0, math.inf)),
            "value_range must be (low, high) with finite numbers and low < high; received: value_range=(0.0, inf)",
            ValueError,
            id="infinite-range",
        ),
        row(
            lambda: small_bn_cnn(momentum=1.5),
            "momentum must be in [0, 1); received: momentum=1.5",
            ValueError,
            id="cnn-momentum",
        ),
        row(
            lambda: small_bn_cnn(dropout=-0.5),
            "dropout must be in [0, 1); received: dropout=-0.5",
            ValueError,
            id="cnn-dropout",
        ),
        row(
            lambda: small_bn_cnn(epsilon=0.0),
            "epsilon must be a positive number; received: epsilon=0.0",
            ValueError,
            id="cnn-epsilon",
        ),
        row(
            lambda: small_bn_cnn(classes=1),
            "classes must be an integer of at least 2; received: classes=1",
            ValueError,
            id="cnn-one-class",
        ),
        row(
            lambda: small_bn_cnn(blocks=0),
            "blocks must be an integer of at least 1; received: blocks=0",
            ValueError,
            id="cnn-no-blocks",
        ),
        row(
            lambda: small_bn_cnn(filters=2.5),
            "filters must be an integer of at least 1; received: filters=2.5",
            ValueError,
            id="cnn-float-filters",
        ),
        row(
            lambda: small_bn_cnn(input_shape=(16, 16)),
            "input_shape must be (height, width, channels) of positive integers; received: input_shape=(16, 16)",
            ValueError,
            id="cnn-shape-without-channels",
        ),
    ],
)
def test_invalid_arguments(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert type(raised.value) is error
    assert str(raised.value) == message


def test_building_strategies_imports_no_keras():
    # Runs in a fresh interpreter: this one may already have imported Keras for other tests.
    import subprocess

    code = (
        "import sys\n"
        "from pipeline_checks.testing import strategies as s\n"
        "s.tiny_datasets(); s.batchnorm_configs(); s.value_ranges()\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'tf_keras') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@given(
    data=tiny_datasets(classes=st.integers(2, 4), per_class=st.integers(1, 3), sizes=st.sampled_from([4, 9])),
)
def test_datasets_stay_within_their_bounds(data):
    assert 2 <= data.classes <= 4
    assert data.size in (4, 9) and data.channels in (1, 3) and data.kind in ("patterns", "noise")
    per_class = len(data) // data.classes
    assert 1 <= per_class <= 3 and len(data) == per_class * data.classes
    assert data.images.shape == (len(data), data.size, data.size, data.channels)
    assert data.images.dtype == np.uint8
    assert data.labels.tolist() == np.repeat(np.arange(data.classes), per_class).tolist()


@given(data=tiny_datasets(classes=3, per_class=2, sizes=8, channels=1, kinds="noise", seeds=5))
def test_fixed_values_give_exactly_that_dataset(data):
    expected = make_tiny_images(classes=3, per_class=2, size=8, channels=1, kind="noise", seed=5)
    assert data.images.tobytes() == expected.images.tobytes()
    assert data.class_names == expected.class_names


@given(value_range=value_ranges(), pixels=st.lists(st.integers(0, 255), min_size=1, max_size=20))
def test_value_ranges_and_scaling(value_range, pixels):
    low, high = value_range
    assert math.isfinite(low) and math.isfinite(high) and high - low >= 0.01
    images = np.array([0, 255, *pixels], dtype=np.uint8)
    scaled = scale_images(images, value_range)
    assert scaled.dtype == np.float32 and scaled.shape == images.shape
    slack = 1e-6 * max(abs(low), abs(high))
    assert scaled[0] == pytest.approx(low, abs=slack) and scaled[1] == pytest.approx(high, abs=slack)
    assert low - slack <= scaled.min() and scaled.max() <= high + slack
    order = np.argsort(images, kind="stable")
    assert np.all(np.diff(scaled[order]) >= 0), "scaling must keep the order of pixel values"


def test_common_value_ranges_come_first_so_failures_shrink_to_them():
    assert draw_one(value_ranges()) == COMMON_VALUE_RANGES[0] == (0.0, 1.0)


@given(config=batchnorm_configs())
def test_configs_stay_within_the_default_bounds(config):
    assert 0 <= config.momentum <= 0.999
    assert config.epsilon in (1e-5, 1e-3, 1e-2)
    assert 1 <= config.batch_size <= 8 and 1 <= config.epochs <= 3 and 1 <= config.blocks <= 3
    assert config.dropout == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.momentum = 0.5


@given(config=batchnorm_configs(momentum=0.5, blocks=st.just(2), dropout=st.floats(0.1, 0.5)))
def test_configs_honour_fixed_values_and_strategies(config):
    assert config.momentum == 0.5 and config.blocks == 2 and 0.1 <= config.dropout <= 0.5


@pytest.mark.parametrize(
    "size, blocks, dropout, poolings",
    [(16, 2, 0.0, 2), (2, 3, 0.0, 1), (8, 1, 0.25, 1)],
    ids=["pools-every-block", "stops-pooling-at-one-pixel", "with-dropout"],
)
def test_config_builds_a_compiled_small_bn_cnn(size, blocks, dropout, poolings):
    from pipeline_checks.model import compat

    keras = compat.keras()
    config = BatchNormConfig(momentum=0.8, epsilon=1e-2, batch_size=2, epochs=1, blocks=blocks, dropout=dropout)
    try:
        model = config.build((size, size, 1), classes=4)
        kinds = [type(layer).__name__ for layer in model.layers]
        batchnorm = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        compiled = model.get_compile_config()
        assert isinstance(model.optimizer, keras.optimizers.Adam)
        assert (compiled["loss"], compiled["metrics"]) == ("sparse_categorical_crossentropy", ["accuracy"])
        assert model.input_shape == (None, size, size, 1) and model.output_shape == (None, 4)
        assert kinds.count("Conv2D") == blocks and kinds.count("MaxPooling2D") == poolings
        assert [(b.momentum, b.epsilon) for b in batchnorm] == [(0.8, 1e-2)] * blocks
        assert kinds.count("Dropout") == (1 if dropout else 0)
        assert model.layers[-1].activation.__name__ == "softmax"
    finally:
        keras.backend.clear_session()
