"""Properties of precise BatchNorm recalibration, on generated data and BN configurations.

Each example fits a tiny network, and tracing `fit` costs about 2 s on two CPU cores
whatever the model's size: the `ci` profile's 10 examples per test keep the file near a
minute, so the properties that can share a fitted model share one test.
"""

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_checks import build_application, make_tiny_images, measure_agreement, recalibrate_batchnorm
from pipeline_checks.model import compat
from pipeline_checks.model.layers import find_batchnorm
from pipeline_checks.model.state import non_trainable_state
from pipeline_checks.testing.strategies import (
    BatchNormConfig,
    batchnorm_configs,
    scale_images,
    tiny_datasets,
    value_ranges,
)


@contextmanager
def fresh_keras():
    """Yield Keras, and clear its session after, so memory stays flat across examples."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    try:
        yield keras
    finally:
        keras.backend.clear_session()


def fitted(data, config, value_range):
    x = scale_images(data.images, value_range)
    model = config.build(x.shape[1:], data.classes)
    model.fit(x, data.labels, batch_size=config.batch_size, epochs=config.epochs, verbose=0)
    return model, x


def train_mode_outputs(model, x) -> np.ndarray:
    """`model(x, training=True)`, with the moving statistics and RNG states it touches put back."""
    state = non_trainable_state(model)
    try:
        return compat.to_numpy(model(x, training=True))
    finally:
        state.restore()


def as_bytes(variables) -> list[bytes]:
    return [np.asarray(v.numpy()).tobytes() for v in variables]


def changed_variables(variables, before: list[bytes]) -> list:
    return [v for v, now, old in zip(variables, as_bytes(variables), before) if now != old]


def paths(variables) -> list[str]:
    return [getattr(v, "path", v.name) for v in variables]


@given(data=tiny_datasets(), config=batchnorm_configs(), value_range=value_ranges())
def test_after_recalibration_on_one_batch_inference_equals_training_mode(data, config, value_range):
    # dropout stays 0 (batchnorm_configs' default): training mode must be deterministic here.
    with fresh_keras():
        model, x = fitted(data, config, value_range)
        recalibrate_batchnorm(model, x, batch_size=len(x))

        agreement = measure_agreement(model, (x, data.labels), batch_size=len(x), recalibrate=False)
        assert agreement.agrees, str(agreement)
        # The loss is not gated where metrics are compiled; with the data's statistics it
        # agrees too, to float rounding.
        loss = agreement.values["evaluate"]["loss"]
        assert abs(agreement.gap("evaluate", "train-mode", "loss")) <= 1e-4 * max(1.0, loss), str(agreement)

        predicted = model.predict(x, batch_size=len(x), verbose=0)
        np.testing.assert_allclose(predicted, train_mode_outputs(model, x), rtol=0, atol=1e-4)


def test_without_recalibration_inference_differs_from_training_mode():
    # The control for the property above: its 1e-4 check does catch stale statistics.
    data = make_tiny_images(classes=3, per_class=2, size=8, seed=0)
    config = BatchNormConfig(momentum=0.99, epsilon=1e-3, batch_size=2, epochs=1, blocks=2)
    with fresh_keras():
        model, x = fitted(data, config, (0.0, 255.0))
        gap = np.abs(model.predict(x, batch_size=len(x), verbose=0) - train_mode_outputs(model, x)).max()
        assert gap > 1e-2


@given(
    data=tiny_datasets(),
    config=batchnorm_configs(dropout=st.sampled_from([0.0, 0.5])),
    value_range=value_ranges(),
    batches=st.sampled_from(["one batch", "fit's batches"]),
)
def test_recalibration_changes_only_moving_statistics_and_restoring_undoes_it(data, config, value_range, batches):
    # One test for both properties: each example pays a trace of fit (about 2 s here).
    # Dropout makes training-mode passes advance an RNG state, which must come back too.
    with fresh_keras():
        model, x = fitted(data, config, value_range)
        layers = [found.layer for found in find_batchnorm(model)]
        statistics = {id(v) for layer in layers for v in (layer.moving_mean, layer.moving_variance)}
        before, optimizer = as_bytes(model.variables), as_bytes(compat.optimizer_variables(model.optimizer))
        settings = [(layer.momentum, layer.trainable) for layer in layers]

        recalibration = recalibrate_batchnorm(
            model, x, batch_size=len(x) if batches == "one batch" else config.batch_size
        )
        changed = changed_variables(model.variables, before)
        assert changed, "recalibration after fit changed no moving statistic"
        assert paths(v for v in changed if id(v) not in statistics) == []
        assert paths(changed_variables(model.optimizer.variables, optimizer)) == []
        assert [(layer.momentum, layer.trainable) for layer in layers] == settings

        recalibration.restore()
        assert paths(changed_variables(model.variables, before)) == []

        with recalibrate_batchnorm(model, x, batch_size=len(x)):
            assert changed_variables(model.variables, before)
            model(x, training=False)  # as users do inside: inference with the data's statistics
        assert paths(changed_variables(model.variables, before)) == []


@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2"])
def test_recalibrated_application_infers_as_in_training_mode_and_restores(name):
    from pipeline_checks.model import compat

    with fresh_keras():
        compat.set_random_seed(0)
        model, preprocess_input = build_application(name, classes=3)
        data = make_tiny_images(classes=3, per_class=2, size=32, kind="photos")
        x = np.asarray(preprocess_input(data.images.astype("float32")))
        before = as_bytes(model.variables)
        stale_gap = np.abs(model.predict(x, batch_size=len(x), verbose=0) - train_mode_outputs(model, x)).max()
        assert stale_gap > 0.1, (
            "with their initial statistics the modes should differ; the checks below would prove nothing"
        )

        recalibration = recalibrate_batchnorm(model, x, batch_size=len(x))
        trained = train_mode_outputs(model, x)
        # Eagerly, inference with the recalibrated statistics is training mode, to rounding. Keras 2
        # trains with the fused kernel and recalibrates with the unfused one (the fused one averages
        # Bessel-corrected variances), which round differently: measured 5.2e-4 on ResNet50, 1.07e-3
        # on MobileNetV2 (Keras 2.12); before recalibration the gap is over 0.1.
        eager_tolerance = 1e-6 if compat.is_keras3() else 2e-3
        np.testing.assert_allclose(compat.to_numpy(model(x, training=False)), trained, rtol=0, atol=eager_tolerance)
        # predict runs a compiled graph whose kernels round differently from eager ones, and
        # differently on each CPU; at 32 px the last stage normalizes 6 values per channel at
        # 1x1, which amplifies that: measured on ResNet50 5.5e-4 on one CPU and 1.07e-3 on an
        # AVX-512 BF16 one (MobileNetV2 3.5e-5, 1.1e-4 without oneDNN). Stale statistics put
        # predict over 0.1 away (asserted above): 1e-2 tells the two apart by 10x either way.
        predicted = model.predict(x, batch_size=len(x), verbose=0)
        np.testing.assert_allclose(predicted, trained, rtol=0, atol=1e-2)

        recalibration.restore()
        assert paths(changed_variables(model.variables, before)) == []
