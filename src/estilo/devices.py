"""Choosing the compute device: CUDA, then MPS, then the CPU, unless one is named."""

from __future__ import annotations

import torch


class DeviceError(RuntimeError):
    """The requested device is not available here."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; a named device must be available.

    Raises:
        DeviceError: the named device does not exist or is not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available "
                          "(is a CUDA build of torch installed?); use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r} requested but there are only "
                          f"{torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not _mps_available():
        raise DeviceError(f"device {name!r} requested but MPS is not available; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_built() and backend.is_available())


def describe(device: torch.device) -> str:
    """A short human description: the GPU's name, or the CPU thread count."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
