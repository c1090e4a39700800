"""Broken regression pipelines caught by the agreement check, varying the correct rows of regression.py."""

from __future__ import annotations

from broken_pipelines.common import broken
from broken_pipelines.regression import regression_cnn


def regression_cnn_stale_batchnorm():
    """The Conv-BN CNN regressing a value per image, with no BatchNorm recalibration after its 30
    full-batch updates: momentum 0.99 keeps 74% of the initial moving mean 0 / variance 1, so inference
    normalizes with statistics the weights never saw. chemprop/chemprop#607 ("training loss much lower
    than test and validation loss", a molecular-property regression) traced it to the running estimates
    initialized at 0 and 1 and updated with momentum; keras-team/keras#6977 (evaluate's loss on the
    training data differs from fit's) to BatchNormalization."""
    return regression_cnn("regression-cnn-stale-batchnorm", after_fit=None)


CASES = [
    broken(
        regression_cnn_stale_batchnorm,
        "regression CNN without BN recalibration: stale moving statistics",
        agreement=r"(?s)Gap: evaluate vs train-mode: predicted_r2 .* below train-mode's.*"
        r"Cause: stale BatchNormalization moving statistics",
    ),
]
