"""Choosing the compute device: CUDA, then MPS, then the CPU, unless one is named."""

from __future__ import annotations

import ctypes
import sys

import torch

from .config import UserError


class DeviceError(UserError, RuntimeError):
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


def compute_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The dtype the network runs in: bfloat16 autocast or plain float32.

    ``auto`` picks bfloat16 where the hardware computes it natively (a CPU with AVX-512
    BF16 or AMX, a CUDA GPU that supports it) and float32 elsewhere (MPS, older CPUs).
    Losses and Gram matrices are always computed in float32.
    """
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu" and _cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def _cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX-512 BF16 or AMX (Linux: read from /proc/cpuinfo)."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def tune(device: torch.device) -> None:
    """Backend settings for a run: TF32 and cuDNN autotuning on CUDA (faster); on every
    device, freed tensors handed back to the system (:func:`return_freed_memory`)."""
    return_freed_memory()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


MMAP_THRESHOLD = 1024 ** 2
"""Allocations from this size (bytes) get their own pages from the system, returned when
freed (see :func:`return_freed_memory`)."""


def return_freed_memory() -> bool:
    """Have glibc's malloc give allocations of :data:`MMAP_THRESHOLD` and up their own pages,
    returned to the system when freed; True if it was done (Linux with glibc).

    By default glibc raises that threshold to the size of each large block freed (up to
    32 MB), after which tensors of up to that size come from the heap, whose freed pages
    may stay resident: a run in tiles, whose crops vary in size, can then hold more than
    its tensors, which no estimate counts. A fixed threshold keeps the resident memory to
    what is in use (benchmarks/README.md, "The memory model").
    """
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


def mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``; True if it was done (False off Linux/glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(parameter, value))
    except (OSError, AttributeError):
        return False
