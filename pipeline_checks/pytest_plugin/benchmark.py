"""Timing compiled training steps, for pytest-benchmark (the `train_step_benchmark` fixture).

Kept free of pytest: `StepBenchmark` drives any object with pytest-benchmark's
`pedantic`, `extra_info`, `stats` and `disabled`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline_checks._validation import check_integer


def make_train_step(model, x, y) -> Callable[[], float]:
    """One compiled training step on a fixed batch, returning the loss as a host float.

    The inputs are converted to backend tensors once (on the accelerator, where there is
    one), so the timing holds the step, not the host-to-device copy. Fetching the loss
    to the host each step forces the device to finish before the clock stops.
    """
    from pipeline_checks.model import compat

    # Keras 2 has no keras.ops: its backend is always TensorFlow.
    convert = compat.keras().ops.convert_to_tensor if compat.is_keras3() else compat.tensorflow().convert_to_tensor
    x, y = convert(x), convert(y)

    def step() -> float:
        return float(np.ravel(model.train_on_batch(x, y))[0])

    return step


@dataclass(frozen=True)
class StepFacts:
    """What a timing means: the workload and the stack it ran on."""

    batch_size: int
    input_size: str
    precision_policy: str
    xla: bool
    backend: str
    device: str
    keras_version: str
    tensorflow_version: str | None
    jax_version: str | None
    gflops_per_image: float | None

    @classmethod
    def of(cls, model, x) -> StepFacts:
        from pipeline_checks.model import compat, devices
        from pipeline_checks.model.flops import count_flops

        policy = getattr(model, "dtype_policy", None)
        try:
            gflops = count_flops(model).flops / 1e9
        except ValueError:
            gflops = None
        return cls(
            batch_size=len(x),
            input_size="x".join(str(d) for d in np.shape(x)[1:]),
            precision_policy=getattr(policy, "name", str(policy)),
            xla=bool(getattr(model, "jit_compile", False)),
            backend=compat.backend(),
            device=devices.device_name(),
            keras_version=compat.keras_version(),
            tensorflow_version=devices.tensorflow_version(),
            jax_version=devices.jax_version(),
            gflops_per_image=gflops,
        )


class StepBenchmark:
    """Times compiled training steps with pytest-benchmark and records what they mean.

    Tracing/compiling happens in one step before any timing, then `warmup_rounds` more
    steps run untimed; each timed round is one step whose loss is fetched to the host.
    `extra_info` gets images/second, ms/step, batch and input size, precision policy, XLA,
    backend, device, versions, GFLOPs per image (forward) and achieved TFLOP/s (training
    step counted as 3x forward).
    """

    def __init__(self, benchmark: Any, on_facts: Callable[[StepFacts], None] = lambda facts: None):
        self.benchmark = benchmark
        self.on_facts = on_facts

    def __call__(self, model, x, y, rounds: int = 10, warmup_rounds: int = 2) -> float | None:
        """Benchmark `model`'s training step on the batch `(x, y)`.

        Args:
            model: a compiled Keras model.
            x, y: one batch of inputs and targets.
            rounds: timed steps.
            warmup_rounds: untimed steps after the first (tracing) one.

        Returns:
            The median seconds per step, or None when benchmarks are disabled.

        Example:
            def test_resnet_step(train_step_benchmark, keras_application):
                model, _ = keras_application("ResNet50")
                model.compile("sgd", "sparse_categorical_crossentropy")
                train_step_benchmark(model, x, y)
        """
        check_integer("rounds", rounds, minimum=1)
        check_integer("warmup_rounds", warmup_rounds, minimum=0)
        if getattr(model, "optimizer", None) is None:
            raise ValueError(f"model {model.name!r} is not compiled: call model.compile(optimizer=..., loss=...) first")
        step = make_train_step(model, x, y)
        step()  # trace and compile, outside every timing
        facts = StepFacts.of(model, x)
        self.on_facts(facts)
        self.benchmark.extra_info.update(vars(facts))
        self.benchmark.pedantic(step, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
        if self.benchmark.disabled:
            return None
        median = self.benchmark.stats.stats.median
        self.benchmark.extra_info.update(ms_per_step=median * 1e3, images_per_second=facts.batch_size / median)
        if facts.gflops_per_image is not None:
            step_flops = 3 * facts.gflops_per_image * 1e9 * facts.batch_size
            self.benchmark.extra_info["achieved_tflops"] = step_flops / median / 1e12
        return median
