"""The device a stage runs on and its mixed precision: one choice for features, training and evaluation."""

from __future__ import annotations

import contextlib

import torch

from pipeline.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda; got {name!r}")
    return torch.device(name)


def use_amp(requested: bool, device: torch.device) -> bool:
    """Whether a run uses mixed precision: `train.amp` requested and a CUDA device (AMP is CUDA only)."""
    return bool(requested and device.type == "cuda")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when `enabled`; a no-op elsewhere."""
    if use_amp(enabled, device):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
