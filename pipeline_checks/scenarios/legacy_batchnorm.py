"""Keras 2.2's BatchNormalization, on Keras 2 and ported to Keras 3, to reproduce reports of that era.

Until Keras 2.1.3 (and in `tf.compat.v1.keras.layers.BatchNormalization` through Keras 2),
a BN layer called in training mode normalized with the batch statistics and updated its
moving ones even with `trainable=False`. Keras 3 has no such layer; this one restores the
behavior, with the configuration and weights of `keras.layers.BatchNormalization`.
"""

from __future__ import annotations

import functools

from pipeline_checks.model import compat


def legacy_batchnorm_class() -> type:
    """BatchNormalization that normalizes with batch statistics and updates its moving ones in
    training mode even when frozen: Keras 2's V1 layer (`tf.compat.v1.keras.layers`), or its
    port to Keras 3 (a subclass of Keras 3's BatchNormalization, built on first use)."""
    if compat.is_keras3():
        return _keras3_port()
    import tensorflow as tf

    return tf.compat.v1.keras.layers.BatchNormalization


@functools.cache
def _keras3_port() -> type:
    keras = compat.keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="pipeline_checks")
    class LegacyBatchNormalization(keras.layers.BatchNormalization):
        """BatchNormalization that trains its statistics whenever called with training=True,
        frozen or not (the bug of the second report: fine-tuning a frozen base)."""

        def call(self, inputs, training=None, mask=None):
            if not training:
                return super().call(inputs, training=False, mask=mask)
            axis = self.axis % len(inputs.shape)
            reduction_axes = [i for i in range(len(inputs.shape)) if i != axis]
            values = ops.cast(inputs, "float32")
            mean, variance = ops.moments(values, axes=reduction_axes)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
            outputs = ops.batch_normalization(
                values, mean, variance, axis=axis, offset=self.beta, scale=self.gamma, epsilon=self.epsilon
            )
            return ops.cast(outputs, inputs.dtype)

    return LegacyBatchNormalization
