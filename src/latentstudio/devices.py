"""Choosing the device to compute on."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

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


def available_ram() -> int:
    """Bytes of RAM that can be allocated now without swapping (MemAvailable); 0 if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def format_bytes(n: float) -> str:
    """Bytes in binary units: 0 B, 512 B, 24.4 MiB, 7.63 GiB."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def cpu_compiler_available() -> bool:
    """Whether torch.compile can build CPU kernels here: a C++ compiler ($CXX, g++ or clang++)
    and Python's headers, on Linux or macOS (Windows needs MSVC set up by hand)."""
    if sys.platform == "win32":
        return False
    compilers = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++"]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    return any(shutil.which(c) for c in compilers) and headers.is_file()
