"""The checks' forward passes (model/forward.py): Keras' own call, compiled once per architecture on JAX."""

import numpy as np
import pytest
from broken_pipelines.common import compiled_cnn, small_pipeline

from pipeline_checks.batchnorm import recalibration
from pipeline_checks.batchnorm.recalibration import recalibrate_batchnorm
from pipeline_checks.model import compat
from pipeline_checks.model import forward as forward_module
from pipeline_checks.model.forward import forward, share_compiled
from pipeline_checks.model.layers import training_only_layers_in_inference
from pipeline_checks.model.state import VariableSnapshot
from pipeline_checks.run.builds import build, forget_fresh_builds

jax_only = pytest.mark.skipif(
    compat.backend() != "jax", reason="forward compiles on JAX only; elsewhere it calls the model"
)

X = np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32")


def numpy_state(model) -> list:
    return [compat.to_numpy(v) for v in model.non_trainable_variables]


def eager_and_forward(model, training: bool):
    """Outputs and state after an eager call, then after `forward`, from the same starting state."""
    start = VariableSnapshot.of(model.variables)
    eager = compat.to_numpy(model(X, training=training)), numpy_state(model)
    start.restore()
    compiled = compat.to_numpy(forward(model, X, training=training)), numpy_state(model)
    start.restore()
    return eager, compiled


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_forward_gives_the_eager_calls_outputs_and_leaves_its_state(training):
    (eager_outputs, eager_state), (outputs, state) = eager_and_forward(compiled_cnn(), training)
    np.testing.assert_allclose(outputs, eager_outputs, rtol=1e-4, atol=1e-5)
    for before, after in zip(eager_state, state):
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)


def test_forward_moves_batchnorm_statistics_in_training_mode_only():
    model = compiled_cnn()
    before = numpy_state(model)
    forward(model, X, training=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, numpy_state(model)))
    forward(model, X, training=True)
    assert not all(np.array_equal(a, b) for a, b in zip(before, numpy_state(model)))


@jax_only
def test_recalibration_through_the_compiled_pass_equals_the_eager_one(monkeypatch):
    """Recalibration changes BatchNorm's momentum batch by batch: the compiled pass takes it as an argument."""
    compiled, eager = compiled_cnn(), compiled_cnn()
    eager.set_weights(compiled.get_weights())
    with recalibrate_batchnorm(compiled, X, batch_size=3) as change:
        recalibrated = [(c.after_mean, c.after_variance) for c in change.layers]
    monkeypatch.setattr(recalibration, "forward", lambda model, x, training: model(x, training=training))
    with recalibrate_batchnorm(eager, X, batch_size=3) as change:
        expected = [(c.after_mean, c.after_variance) for c in change.layers]
    assert len(recalibrated) == len(expected) > 0
    for (mean, variance), (expected_mean, expected_variance) in zip(recalibrated, expected):
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variance, expected_variance, rtol=1e-5, atol=1e-6)


@jax_only
def test_builds_of_one_pipeline_share_compiled_passes_and_other_architectures_do_not():
    pipeline = small_pipeline("shared-compiled")
    try:
        first, second = build(pipeline, 0), build(pipeline, 1)
        forward(first, X, training=True)
        assert forward_module._FUNCTIONS[second] is forward_module._FUNCTIONS[first]
        other = compiled_cnn(classes=4)
        share_compiled(other, first)
        assert forward_module._FUNCTIONS.get(other) is not forward_module._FUNCTIONS[first]
        np.testing.assert_allclose(
            compat.to_numpy(forward(second, X, training=False)),
            compat.to_numpy(second(X, training=False)),
            rtol=1e-4,
            atol=1e-5,
        )
    finally:
        forget_fresh_builds(pipeline)


class Shifted(compat.keras().layers.Layer):
    """A custom layer holding state in a plain attribute, as an `adapt` written by hand may."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = 0.0

    def call(self, inputs):
        return inputs + self.offset


def shifted_model():
    keras = compat.keras()
    inputs = keras.Input((16, 16, 3))
    return keras.Model(inputs, keras.layers.Dense(2)(Shifted()(keras.layers.Flatten()(inputs))))


@jax_only
def test_a_custom_layers_plain_state_is_not_baked_into_another_models_pass():
    first, second = shifted_model(), shifted_model()
    second.set_weights(first.get_weights())
    first.layers[2].offset = 1.0  # what the files do not carry: the second must not run with it
    forward(first, X, training=False)
    share_compiled(second, first)
    assert forward_module._FUNCTIONS.get(second) is not forward_module._FUNCTIONS[first]
    np.testing.assert_allclose(
        compat.to_numpy(forward(second, X, training=False)),
        compat.to_numpy(second(X, training=False)),
        rtol=1e-4,
        atol=1e-5,
    )


@jax_only
def test_a_loaded_model_shares_compiled_passes_only_when_every_layer_is_keras_own(tmp_path):
    keras = compat.keras()
    for model, shares in ((compiled_cnn(), True), (shifted_model(), False)):
        forward(model, X, training=False)
        model.save(tmp_path / "model.keras")
        loaded = keras.saving.load_model(tmp_path / "model.keras", custom_objects={"Shifted": Shifted})
        share_compiled(loaded, model)
        assert (forward_module._FUNCTIONS.get(loaded) is forward_module._FUNCTIONS[model]) is shares
        np.testing.assert_allclose(
            compat.to_numpy(forward(loaded, X, training=False)),
            compat.to_numpy(model(X, training=False)),
            rtol=1e-4,
            atol=1e-5,
        )


@jax_only
def test_a_layer_held_in_inference_gets_its_own_compiled_pass():
    keras = compat.keras()
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dropout(0.9)(keras.layers.Dense(4)(x))
    model = keras.Model(inputs, outputs)
    dropped = compat.to_numpy(forward(model, X, training=True))
    with training_only_layers_in_inference(model):
        held = compat.to_numpy(forward(model, X, training=True))
    np.testing.assert_allclose(held, compat.to_numpy(model(X, training=False)), rtol=1e-5, atol=1e-6)
    assert (dropped == 0).mean() > 0.5  # dropout active outside the block


@jax_only
def test_a_model_adding_losses_in_call_runs_eagerly():
    keras = compat.keras()
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(4, activity_regularizer=keras.regularizers.L2(0.1))(x)
    model = keras.Model(inputs, outputs)
    forward(model, X, training=True)
    assert forward_module._EAGER in forward_module._FUNCTIONS[model].by_key.values()
    np.testing.assert_allclose(
        compat.to_numpy(forward(model, X, training=True)), compat.to_numpy(model(X, training=True)), rtol=1e-5
    )
