"""Broken regression pipelines: stale BatchNorm statistics (agreement), a frozen BatchNorm trunk that
runs in training mode (frozen_layers), images scaled at fit and served raw (preprocessing), a custom
layer not registered for loading (save_load), each varying the correct regression-cnn of regression.py."""

from __future__ import annotations

from broken_pipelines.common import broken
from broken_pipelines.regression import PATTERN_VALUE, regression_cnn, regression_cnn_model
from broken_pipelines.reproducibility import RAW_PIXELS, custom_layers
from broken_pipelines.training import _base, _custom, _preprocess
from pipeline_checks.model import compat
from pipeline_checks.pipelines.pipeline import to_float


def _compiled(inputs, outputs):
    keras = compat.keras()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def regression_cnn_stale_batchnorm():
    """The Conv-BN CNN regressing a value per image, with no BatchNorm recalibration after its 30
    full-batch updates: momentum 0.99 keeps 74% of the initial moving mean 0 / variance 1, so inference
    normalizes with statistics the weights never saw. chemprop/chemprop#607 ("training loss much lower
    than test and validation loss", a molecular-property regression) traced it to the running estimates
    initialized at 0 and 1 and updated with momentum; keras-team/keras#6977 (evaluate's loss on the
    training data differs from fit's) to BatchNormalization."""
    return regression_cnn("regression-cnn-stale-batchnorm", after_fit=None)


def _frozen_ported_trunk():
    """A "pretrained" Conv-BN trunk whose BatchNormalization was ported from tf.compat.v1 code, warmed
    up on the values, then frozen under a new linear head: in training mode the ported layer still
    normalizes with batch statistics and moves its moving ones, trainable=False or not."""
    keras = compat.keras()
    base = _base(_custom().PortedBatchNorm)
    inputs = keras.Input((16, 16, 3))
    model = _compiled(inputs, keras.layers.Dense(1, name="value")(base(inputs)))
    model.fit(_preprocess(regression_cnn().data[0]), PATTERN_VALUE, epochs=5, batch_size=12, verbose=0)
    base.trainable = False
    return _compiled(inputs, model.outputs[0])


def regression_frozen_ported_batchnorm():
    """keras-team/keras#7085 ("Freezing a BatchNormalization layer by setting trainable = false does not
    work"), keras-team/keras#9207 (the fit loss of a non-trainable model with BatchNormalization changes
    with the batch): a frozen layer that still normalizes with batch statistics and moves its moving ones,
    as repositories' own BatchNormalization did until keras.layers.BatchNormalization froze
    (zzh8829/yolov3-tf2#188 replaced its custom layer for that)."""
    return regression_cnn("regression-frozen-ported-batchnorm", build_model=_frozen_ported_trunk)


def regression_served_raw_pixels():
    """Pixels / 255 at fit, raw 0..255 pixels at serving: inputs scaled for training only, as in
    krishnanlab/PyGenePlexus#364 ("scaling the training data but not the prediction data") and
    Apress/artificial-neural-networks-with-tensorflow-2#7 (model.predict on features the StandardScaler
    never saw); keras-team/keras#6977's comments found evaluate fed other inputs than fit."""
    return regression_cnn("regression-served-raw-pixels", preprocess_infer=to_float)


def _behind_unregistered_rescale():
    """The regression CNN behind a rescaling layer of the repository's own, never registered."""
    keras = compat.keras()
    inputs = keras.Input((16, 16, 3))
    rescaled = custom_layers().UnregisteredRescale(1 / 255)(inputs)
    return _compiled(inputs, regression_cnn_model()(rescaled))


def regression_unregistered_custom_layer():
    """A custom layer not registered with keras.saving: the saved model does not load (fversaci/WaveTF#3,
    "ValueError: Unknown layer: HaarWaveLayer2D" from load_model; tensorflow/tensorflow#61085)."""
    return regression_cnn(
        "regression-unregistered-custom-layer", build_model=_behind_unregistered_rescale, **RAW_PIXELS
    )


CASES = [
    broken(
        regression_cnn_stale_batchnorm,
        "regression CNN without BN recalibration: stale moving statistics",
        agreement=r"(?s)Gap: evaluate vs train-mode: predicted_r2 .* below train-mode's.*"
        r"Cause: stale BatchNormalization moving statistics",
    ),
    broken(
        regression_frozen_ported_batchnorm,
        "regression head on a frozen trunk whose ported BatchNormalization updates in training mode",
        frozen_layers=r"(?s)frozen BN moving statistics moved.*PortedBatchNorm updates its statistics",
        # The ported layer is no keras BatchNormalization: recalibration does not reach it, so no cause is named.
        agreement=r"Gap: evaluate vs train-mode: predicted_r2 -?[\d.]+ is [\d.]+ below train-mode's",
    ),
    broken(
        regression_served_raw_pixels,
        "regression CNN fit on pixels / 255, served raw 0..255 pixels",
        preprocessing=r"preprocess_train and preprocess_infer give different inputs(.|\n)*training feeds pixels / "
        r"255(.|\n)*inference feeds raw pixels 0\.\.255",
        # Every mode is measured on the inference inputs: BatchNorm's batch statistics absorb the raw scale in
        # train-mode, its moving ones do not.
        agreement=r"Gap: evaluate vs train-mode: predicted_r2 -?[\d.]+ is [\d.]+ below train-mode's",
    ),
    broken(
        regression_unregistered_custom_layer,
        "regression CNN behind a custom layer not registered as serializable",
        save_load=r"(?s)the custom class 'UnregisteredRescale' is not registered.*register_keras_serializable",
    ),
]
