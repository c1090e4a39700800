"""The pipelines module of a small project, as the pytester runs of the plugin write it."""

import textwrap

# The built-in suite alone, in test order, as most pytester runs of it start.
SUITE_ONLY = ("--pipeline-checks", "--pc-suite-only", "-p", "no:randomly")

# A small Conv-BN CNN on 12 photographs; each test module adds its own pipelines below it.
SMALL_CNN = """
import numpy as np
from pipeline_checks import Pipeline, make_tiny_images, recalibrate_batchnorm
from pipeline_checks.testing.small_models import small_bn_cnn

PHOTOS = make_tiny_images(classes=3, per_class=4, size=16, kind="photos")


def compiled(rate=0.01):
    from pipeline_checks.model import compat

    keras = compat.keras()
    model = small_bn_cnn((16, 16, 3), classes=3)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def recalibrated(model, x):
    recalibrate_batchnorm(model, x, batch_size=12)


def scaled(images):
    return images / np.float32(255)
"""


def pipelines_module(pipelines: str) -> str:
    """The module's source: the small CNN and its data, then `pipelines` (any indentation)."""
    return SMALL_CNN + textwrap.dedent(pipelines)
