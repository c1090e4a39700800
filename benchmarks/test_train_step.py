"""Training-step time of keras.applications models, with images/second and TFLOP/s.

CPU cases are small and run everywhere (in CI once each, with --benchmark-disable);
GPU cases are the real workload (224x224, batch 256, bfloat16, XLA) and skip without a GPU.
    pytest benchmarks --benchmark-enable                     time them
    pytest benchmarks --benchmark-enable --benchmark-autosave   store a baseline
"""

import numpy as np
import pytest

from pipeline_checks import build_application
from pipeline_checks.model.applications import APPLICATIONS

MODELS = ["ResNet50", "InceptionV3", "MobileNetV2", "EfficientNetB0"]
CLASSES = 10


def batch_for(application, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch_size, *application.input_shape)).astype("float32")
    labels = rng.integers(0, CLASSES, batch_size)
    return np.asarray(application.preprocess_input(images)), labels


def compiled(name, size, jit_compile):
    size = max(size, APPLICATIONS[name].min_size)  # InceptionV3 accepts no less than 75
    application = build_application(name, classes=CLASSES, input_shape=size)
    application.model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
    return application


@pytest.mark.parametrize("name", MODELS)
def test_cpu_training_step(train_step_benchmark, name):
    application = compiled(name, size=64, jit_compile=False)
    train_step_benchmark(application.model, *batch_for(application, batch_size=8), rounds=5, warmup_rounds=1)


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODELS)
def test_gpu_training_step(train_step_benchmark, precision_policy, name):
    precision_policy("mixed_bfloat16")
    application = compiled(name, size=224, jit_compile=True)
    train_step_benchmark(application.model, *batch_for(application, batch_size=256), rounds=20, warmup_rounds=5)
