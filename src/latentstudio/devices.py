"""Choosing the device to compute on."""

from __future__ import annotations

import torch

from latentstudio.errors import UserError


def resolve_device(name: str | torch.device) -> torch.device:
    """'auto' picks CUDA when present, else CPU; anything else is checked."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    return device
