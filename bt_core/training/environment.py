"""What the run ran on: Keras backend, device, library versions (recorded in the manifest)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

_LIBRARIES = ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "numpy", "scikit-learn",
              "opencv-python-headless", "pandas")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def device_description() -> str:
    """The accelerator Keras trains on, or the CPU with its core count."""
    import keras

    backend = keras.backend.backend()
    cpu = f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    if backend == "jax":
        import jax

        devices = jax.devices()
        if devices and devices[0].platform != "cpu":
            return f"{len(devices)} x {devices[0].device_kind}"
    elif backend == "tensorflow":
        tensorflow = sys.modules.get("tensorflow") or __import__("tensorflow")
        gpus = tensorflow.config.list_physical_devices("GPU")
        if gpus:
            return f"{len(gpus)} x GPU ({gpus[0].name})"
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return cpu


def backend_name() -> str:
    import keras

    return keras.backend.backend()
