"""Where models run and which versions run them: devices, accelerators, installed versions."""

from __future__ import annotations

import importlib.metadata
import os
import sys

from pipeline_checks.model import compat


def describe() -> str:
    """One line describing the Keras stack, for the pytest report header.

    E.g. 'keras 3.15.1 (backend tensorflow), tensorflow 2.21.0, devices CPU:0'."""
    keras_version = compat.keras_version()
    backend = compat.backend()
    tensorflow = tensorflow_version() or "not installed"
    return f"keras {keras_version} (backend {backend}), tensorflow {tensorflow}, devices {', '.join(devices())}"


def installed_version(*distributions: str) -> str | None:
    """Version of the first installed distribution among `distributions`, without importing it."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tensorflow_version() -> str | None:
    module = sys.modules.get("tensorflow")
    if module is not None and hasattr(module, "__version__"):
        return module.__version__
    return installed_version("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos")


def devices() -> list[str]:
    """Devices the current backend can run on, e.g. ['CPU:0', 'GPU:0']."""
    name = compat.backend()
    if name == "tensorflow":
        import tensorflow as tf

        found = tf.config.list_physical_devices()
        return [f"{d.device_type}:{d.name.rsplit(':', 1)[-1]}" for d in found]
    if name == "jax":
        import jax

        return [f"{d.platform.upper()}:{d.id}" for d in jax.devices()]
    if name == "torch":
        import torch

        gpus = [f"GPU:{i}" for i in range(torch.cuda.device_count())]
        return ["CPU:0", *gpus]
    return ["CPU:0"]


def gpu_available() -> bool:
    return any(d.startswith("GPU") for d in devices())


def device_name() -> str:
    """The name of the device training runs on, e.g. 'NVIDIA H100 80GB HBM3' or the CPU model."""
    name = compat.backend()
    try:
        if name == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        elif name == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return device.device_kind
        elif name == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
    except Exception:  # Device details are informative only; never fail a benchmark on them.
        pass
    return _cpu_model()


# Vector instruction sets that change which kernels oneDNN, XLA and Eigen pick, newest first.
VECTOR_EXTENSIONS = ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx512f", "avx2", "avx", "asimd", "neon")


def machine() -> str:
    """What picks a run's kernels besides the versions: the device, the CPU's widest vector
    instructions and how many cores share the work, e.g. 'AMD EPYC, avx512_bf16, 2 CPUs'.

    Two machines that differ here can differ in a kernel's last bit, and a deep network's
    training grows that within a few epochs (docs/baselines.md, "Noise").
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [device_name(), *_widest_vector_extension(), f"{cores} CPUs"]
    return ", ".join(parts)


def _widest_vector_extension() -> list[str]:
    flags = _cpuinfo("flags", "Features")
    if flags is None:  # not Linux: the CPU's model name stands for its instructions
        return []
    return [next((name for name in VECTOR_EXTENSIONS if name in flags.split()), "no vector extension")]


def _cpu_model() -> str:
    import platform

    return _cpuinfo("model name") or platform.processor() or platform.machine() or "CPU"


def _cpuinfo(*fields: str) -> str | None:
    """The value of the first line of /proc/cpuinfo that starts with one of `fields`; None off Linux."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith(fields)), "")
    except OSError:
        return None


def jax_version() -> str | None:
    module = sys.modules.get("jax")
    return getattr(module, "__version__", None) or installed_version("jax")
