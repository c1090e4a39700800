"""Gradients of the compiled loss in a training-mode pass, on each backend.

fit computes its gradients inside a traced step we cannot reach; these compute the same
loss (regularization included) on the backend's own autodiff, outside fit.
"""

from __future__ import annotations

import numpy as np

from pipeline_checks.model import compat


def loss_gradients(model, x, y, trainable: list) -> list[np.ndarray | None] | None:
    """Gradients of the compiled loss on `(x, y)` with respect to `trainable`, as fit's step sees it.

    Returns:
        One array per variable (None where the loss does not depend on it), or None when the
        backend is not supported (see `supports_gradients`).
    """
    compute = _BACKEND_GRADIENTS.get(compat.backend())
    return None if compute is None else compute(model, x, y, trainable)


def supports_gradients() -> bool:
    return compat.backend() in _BACKEND_GRADIENTS


def _tensorflow_gradients(model, x, y, trainable):
    import tensorflow as tf

    x, y = tf.convert_to_tensor(x), tf.nest.map_structure(tf.convert_to_tensor, y)  # y: per output, for several
    with tf.GradientTape() as tape:
        loss = compat.loss_tensor(model, x, y, model(x, training=True), training=True)
    return [None if g is None else np.array(tf.convert_to_tensor(g)) for g in tape.gradient(loss, trainable)]


def _jax_gradients(model, x, y, trainable):
    """Compiled as one function: JAX run eagerly compiles every op and its transpose on first use,
    42 s for MobileNetV2's gradients on 2 CPU cores against 7 s for the whole function."""
    import jax

    def loss_of(values, non_trainable, metrics, optimizer, x, y):
        loss, _ = model.compute_loss_and_updates(
            values,
            non_trainable,
            metrics,
            x,
            y,
            None,
            training=True,
            optimizer_variables=optimizer,
        )
        return loss

    arguments = [
        [v.value for v in variables]
        for variables in (trainable, model.non_trainable_variables, model.metrics_variables, model.optimizer.variables)
    ]
    return [np.array(g) for g in jax.jit(jax.grad(loss_of))(*arguments, x, y)]


def _torch_gradients(model, x, y, trainable):
    for v in trainable:
        v.value.grad = None
    ops, tree = compat.keras().ops, compat.keras().tree
    x, y = ops.convert_to_tensor(x), tree.map_structure(ops.convert_to_tensor, y)  # on the model's device
    loss = compat.loss_tensor(model, x, y, model(x, training=True), training=True)
    loss.backward()
    gradients = [None if v.value.grad is None else v.value.grad.detach().cpu().numpy().copy() for v in trainable]
    for v in trainable:
        v.value.grad = None
    return gradients


_BACKEND_GRADIENTS = {"tensorflow": _tensorflow_gradients, "jax": _jax_gradients, "torch": _torch_gradients}
