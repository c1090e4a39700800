"""Training in stages: the pipeline's own `train(model, data)` calls fit more than once.

The keras.io transfer-learning recipe: a head trained on a frozen base, then the base
unfrozen, the model compiled again and fine-tuned. Each fit is a stage; frozen_layers judges
each stage's frozen set, agreement the last stage. Measured on Keras 3 with TensorFlow only:
the rows name no other backend yet. The model is `small_pipeline()`'s blocks as
a "base" model with a softmax head, the base warmed up in `build_model` as pretraining leaves it.
"""

from __future__ import annotations

import functools

from broken_pipelines.common import (
    CLASSES,
    broken,
    compiled_cnn,
    correct,
    small_pipeline,
)
from broken_pipelines.training import _base, _features, _keras, _on_base, _warmed_up
from pipeline_checks.model import compat


def _compile(model, learning_rate):
    model.compile(
        optimizer=_keras().optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )


def pretrained_on_base():
    """The head on a "pretrained" base (one warm-up epoch, BN statistics from the data)."""
    return _warmed_up(_on_base(_base()))


def fine_tune(model, data, recompile=True):
    """Stage 1: the head on the frozen base; stage 2: the base unfrozen, compiled again, fine-tuned."""
    x, y = data
    base = model.get_layer("base")
    base.trainable = False
    _compile(model, 0.01)
    model.fit(x, y, epochs=5, batch_size=4)
    base.trainable = True
    if recompile:
        _compile(model, 1e-3)
    return model.fit(x, y, epochs=10, batch_size=4)


def train_then_freeze(model, data):
    """Stage 1 trains everything; stage 2 freezes the base for the head alone, without compiling again."""
    x, y = data
    first = model.fit(x, y, epochs=5, batch_size=4)
    model.get_layer("base").trainable = False
    return [first, model.fit(x, y, epochs=10, batch_size=4)]


def fine_tune_not_recompiled(model, data):
    return fine_tune(model, data, recompile=False)


def fine_tune_stages():
    return small_pipeline("stages-fine-tune", build_model=pretrained_on_base, train=fine_tune)


def unfreeze_without_recompile_stages():
    return small_pipeline(
        "stages-unfreeze-not-recompiled", build_model=pretrained_on_base, train=fine_tune_not_recompiled
    )


def freeze_without_recompile_stages():
    return small_pipeline("stages-freeze-not-recompiled", build_model=pretrained_on_base, train=train_then_freeze)


# --- custom training: a subclassed model's own train_step, a GradientTape loop (TensorFlow) ---


@functools.cache
def _step_model_class():
    import tensorflow as tf

    keras = _keras()

    @keras.saving.register_keras_serializable(package="broken_pipelines")
    class StepModel(keras.Model):
        """Its own train_step, as keras.io's "customizing what happens in fit" writes it for TensorFlow."""

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            variables = self.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return self.get_metrics_result()

    return StepModel


def step_model():
    keras = _keras()
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="head")(_features(inputs))
    model = _step_model_class()(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_once(model, data):
    x, y = data
    return model.fit(x, y, epochs=15, batch_size=4)


def gradient_tape_loop(model, data, stale_variables=False, epochs=15):
    """A hand-written TensorFlow loop: no fit. With `stale_variables`, it freezes the model's
    first layers after taking the list of variables to train, and trains that stale list."""
    import tensorflow as tf

    keras = _keras()
    x, y = data
    variables = list(model.trainable_variables)
    if stale_variables:
        for layer in model.layers[:4]:  # the input and the first Conv-BN block
            layer.trainable = False
    else:
        variables = list(model.trainable_variables)
    optimizer, loss_of = keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy()
    batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(4)

    @tf.function
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = loss_of(targets, model(inputs, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(epochs):
        for inputs, targets in batches:
            step(inputs, targets)


def stale_variables_loop(model, data):
    return gradient_tape_loop(model, data, stale_variables=True)


def custom_train_step():
    return small_pipeline("stages-custom-train-step", build_model=step_model, train=fit_once)


def gradient_tape():
    return small_pipeline("stages-gradient-tape-loop", train=gradient_tape_loop)


def gradient_tape_stale_variables():
    return small_pipeline("stages-gradient-tape-stale-variables", build_model=compiled_cnn, train=stale_variables_loop)


def _tensorflow() -> bool:
    return compat.backend() == "tensorflow" and compat.is_keras3()


# Keras on JAX checks that fit passes the weights its optimizer was built for: a stale train function raises.
JAX_REFUSES_STALE_TRAIN_FUNCTION = (
    "Keras on JAX refuses the stale train function: the optimizer was built for the weights trainable in fit 1, "
    "and fit 2 passes others",
    r"train raised ValueError: Argument `optimizer_variables` must be a list of tensors corresponding 1:1",
)

CASES = [
    correct(
        fine_tune_stages,
        "none: head on a frozen base (fit 1), then the base unfrozen, recompiled and fine-tuned (fit 2)",
    ),
    broken(
        freeze_without_recompile_stages,
        "train function: fit 1 trains all, then the base is frozen without compiling again for fit 2",
        frozen_layers=r"(?s)in stage 2 of 2 \(fit 2\): frozen weights moved.*call compile\(\) again",
    )
    .on("jax", *JAX_REFUSES_STALE_TRAIN_FUNCTION)
    .on(
        "torch",
        "Keras on torch runs fit eagerly, reading the trainable weights at every step: the freeze takes "
        "effect without compiling again, so there is no bug to catch (every check passes)",
    ),
    broken(
        unfreeze_without_recompile_stages,
        "train function: the base unfrozen for fit 2 without compiling again (Keras 3 "
        "on TensorFlow keeps fit 1's train function, so the base never trains)",
        variables_change=r"(?s)8 of 10 trainable weights never changed.*frozen in fit 1 and set trainable for fit "
        r"2.*without compiling again",
    )
    .on("jax", *JAX_REFUSES_STALE_TRAIN_FUNCTION)
    .on(
        "torch",
        "Keras on torch refuses the stale optimizer: it was built for the head's weights in fit 1, and "
        "fit 2 passes the base's too",
        raises=r"train raised ValueError: Unknown variable",
    ),
]

if _tensorflow():  # GradientTape: the TensorFlow backend's own training API
    CASES += [
        correct(custom_train_step, "none: a subclassed model with its own train_step, fit by the train function"),
        correct(gradient_tape, "none: a GradientTape loop, no fit (a custom loop stage)"),
        broken(
            gradient_tape_stale_variables,
            "GradientTape loop training a variable list taken before freezing the first block",
            frozen_layers=r"(?s)in stage 1 of 1 \(custom loop\): frozen weights moved.*applies gradients to",
            variables_change=r"frozen weights changed",
        ),
    ]
