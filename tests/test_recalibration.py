"""Precise BatchNorm recalibration: exact statistics, nothing else touched, undoable."""

import numpy as np
import pytest

from pipeline_checks import make_tiny_images, recalibrate_batchnorm
from pipeline_checks.model import compat
from pipeline_checks.model.state import VariableSnapshot, train_mode_outputs

keras = compat.keras()
# Synchronized BN is a TensorFlow-backend feature; elsewhere the same model runs without it.
SYNCHRONIZED = {"synchronized": True} if compat.supports_synchronized_batchnorm() else {}


def nested_model(frozen_inner=False):
    """A Functional model used as a layer of a Sequential one, as in the second report."""
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, name="inner_conv")(inputs)
    x = keras.layers.BatchNormalization(name="inner_bn")(x)
    inner = keras.Model(inputs, keras.layers.ReLU()(x), name="base")
    inner.trainable = not frozen_inner
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            inner,
            keras.layers.Conv2D(4, 3, name="top_conv"),
            keras.layers.BatchNormalization(momentum=0.9, name="top_bn", **SYNCHRONIZED),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="classifier",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture
def data(pc_seed):
    rng = np.random.default_rng(pc_seed)
    return rng.normal(3.0, 2.0, (10, 12, 12, 3)).astype("float32"), np.arange(10) % 3


def everything(model):
    return VariableSnapshot.of([*model.variables, *compat.optimizer_variables(model.optimizer)])


def test_finds_nested_and_synchronized_layers_and_reports_each(data):
    x, _ = data
    model = nested_model()
    change = recalibrate_batchnorm(model, x)
    assert [c.path for c in change.layers] == ["base/inner_bn", "top_bn"]
    assert change.frozen == [] and (change.samples, change.batches) == (10, 1)
    for c in change.layers:
        assert not np.array_equal(c.before_mean, c.after_mean) and c.drift > 0
    assert "Recalibrated 2 BatchNormalization layers on 10 samples in 1 batches" in str(change)


def test_one_batch_gives_that_batchs_statistics_so_predict_equals_training_mode(data):
    x, _ = data
    model = nested_model()
    recalibrate_batchnorm(model, x, batch_size=len(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), train_mode_outputs(model, x), atol=1e-4)
    first_bn_inputs = compat.to_numpy(
        keras.Model(model.layers[0].input, model.layers[0].get_layer("inner_conv").output)(x)
    )
    inner_bn = model.layers[0].get_layer("inner_bn")
    np.testing.assert_allclose(inner_bn.moving_mean, np.mean(first_bn_inputs, axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inner_bn.moving_variance, np.var(first_bn_inputs, axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)


def test_several_batches_average_their_statistics_weighted_by_size(data):
    x, _ = data
    model = nested_model()
    conv = keras.Model(model.layers[0].input, model.layers[0].get_layer("inner_conv").output)
    batches = [compat.to_numpy(conv(x[i : i + 4])) for i in range(0, 10, 4)]  # sizes 4, 4, 2
    expected_mean = sum(len(b) * b.mean(axis=(0, 1, 2)) for b in batches) / 10
    expected_variance = sum(len(b) * b.var(axis=(0, 1, 2)) for b in batches) / 10
    change = recalibrate_batchnorm(model, x, batch_size=4, shuffle=False)  # the batches above, in order
    assert change.batches == 3
    inner_bn = model.layers[0].get_layer("inner_bn")
    np.testing.assert_allclose(inner_bn.moving_mean, expected_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inner_bn.moving_variance, expected_variance, rtol=1e-4, atol=1e-5)


def test_only_moving_statistics_change_and_restore_is_exact(data):
    x, y = data
    model = nested_model()
    model.fit(x, y, epochs=1, batch_size=5, verbose=0)
    before = everything(model)
    configs = [layer.get_config() for layer in model.layers]
    change = recalibrate_batchnorm(model, x)
    changed = sorted(v.name.split("/")[-1].split(":")[0] for v in before.changed())  # Keras 2: "inner_bn/moving_mean:0"
    assert changed == ["moving_mean", "moving_mean", "moving_variance", "moving_variance"]
    assert [layer.get_config() for layer in model.layers] == configs
    assert [c.layer.momentum for c in change.layers] == [0.99, 0.9]
    change.restore()
    assert before.changed() == []


def test_context_manager_restores_on_exit(data):
    x, _ = data
    model = nested_model()
    before = everything(model)
    with recalibrate_batchnorm(model, x) as change:
        assert len(before.changed()) == 4
    assert change.restored and before.changed() == []


def test_failure_midway_leaves_everything_bit_identical(data):
    x, _ = data
    model = nested_model()
    before = everything(model)
    wrong_shape = np.zeros((2, 9, 9, 3), dtype="float32")
    with pytest.raises(Exception):  # noqa: B017 - whichever error the backend raises on the shape
        recalibrate_batchnorm(model, [x[:4], wrong_shape])
    assert before.changed() == []
    assert [layer.momentum for layer in (model.layers[0].get_layer("inner_bn"), model.get_layer("top_bn"))] == [
        0.99,
        0.9,
    ]


def test_frozen_layers_are_left_alone_and_reported_unless_included(data):
    x, _ = data
    model = nested_model(frozen_inner=True)
    change = recalibrate_batchnorm(model, x)
    assert [c.path for c in change.layers] == ["top_bn"] and change.frozen == ["base/inner_bn"]
    change.restore()
    included = recalibrate_batchnorm(model, x, include_frozen=True)
    assert [c.path for c in included.layers] == ["base/inner_bn", "top_bn"]
    assert model.layers[0].get_layer("inner_bn").trainable is False


def test_accepts_a_tf_data_dataset(data):
    tf = pytest.importorskip("tensorflow", reason="tf.data needs TensorFlow")
    x, y = data
    model = nested_model()
    change = recalibrate_batchnorm(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(5))
    assert (change.samples, change.batches) == (10, 2)


def test_a_model_without_batchnorm_gets_an_empty_result_and_a_note(data):
    x, _ = data
    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Flatten(), keras.layers.Dense(2)], name="plain")
    change = recalibrate_batchnorm(model, x)
    assert change.layers == [] and str(change) == "plain has no BatchNormalization layers; nothing to recalibrate."


@pytest.mark.parametrize(
    "make_data, kwargs, error, message",
    [
        (lambda: np.zeros((0, 12, 12, 3), "float32"), {}, ValueError, "data holds no samples; pass at least one image"),
        (lambda: [], {}, ValueError, "data holds no samples; pass at least one image"),
        (
            lambda: make_tiny_images(size=12),
            {},
            TypeError,
            "Pass model inputs, not a TinyImageDataset of raw uint8 images*",
        ),
        (
            lambda: np.zeros((4, 12, 12, 3), "float32"),
            {"batch_size": 0},
            ValueError,
            "batch_size must be a positive integer or None; received: batch_size=0",
        ),
        (
            lambda: 3.0,
            {},
            TypeError,
            "data must be an array of inputs, a tuple (x, y), or an iterable of batches*received: float",
        ),
    ],
    ids=["empty-array", "no-batches", "raw-tiny-dataset", "zero-batch-size", "scalar"],
)
def test_invalid_data(make_data, kwargs, error, message):
    from fnmatch import fnmatchcase

    with pytest.raises(error) as raised:
        recalibrate_batchnorm(nested_model(), make_data(), **kwargs)
    assert fnmatchcase(str(raised.value), message), str(raised.value)
