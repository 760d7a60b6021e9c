"""Which floating-point precision a piece of work runs in: the one place that resolves `auto`.

On a GPU `auto` is bf16 autocast where the GPU supports it, fp16 otherwise. On a CPU it is bf16
autocast only where the CPU computes bf16 natively (AVX-512 BF16 or AMX, read from its flags)
and where measurement showed bf16 faster for that kind of work (CPU_BF16_FASTER); fp32
everywhere else. LATENTSTUDIO_CPU_BF16=0 (or 1) overrides the CPU check, e.g. to compare the
two or to test both paths on one machine.

CPPN renders stay fp32 on every device: bf16 keeps 8 significant bits, so the pixel coordinates
fed to the first layer round to steps of up to 1/32 and neighbouring pixels share a value (a
random CPPN at 512² differed from fp32 by up to 0.41 of its [-1, 1] range, for a 1.2x speed-up).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["auto", "bf16", "fp16", "fp32"]
Workload = Literal["train", "dream", "features"]

CPU_BF16_ENV = "LATENTSTUDIO_CPU_BF16"
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})

# Measured on a 2-core AMD EPYC with avx512_bf16 (torch 2.13, oneDNN, channels-last), fp32 and
# bf16 timed in the same process in alternating pairs, fp32 time / bf16 time per pair:
# - train, 2 threads, load ~1.5: DCGAN-64 batch 64 1.50-1.73x; DCGAN-32 width 32 (the demo)
#   1.18-1.38x; conv VAE 1.21-1.35x; dense GAN 2.09-2.34x; dense VAE 1.25-1.65x. 1 thread, load
#   ~8.5: DCGAN-64 batch 32 1.40-1.63x, conv VAE 1.19-1.45x. Conv and dense nets alike.
#   (With 2 threads on a CPU oversubscribed by other jobs, load 6-7, bf16 lost: DCGAN-64 0.61x,
#   conv VAE 0.38x in benchmarks/results/train_speed_cpu-amd-epyc-bf16.md; the same benchmark
#   with 1 thread at load 6.7: DCGAN-64 2.15x, conv VAE 1.98x.)
# - dream: GoogLeNet inception4c gradient of a 512² tile 1.38-2.27x (load 3.7-5); the whole
#   1024² dream of benchmarks/dream_speed.py, 1 thread, 1.98-1.99x.
# - features: lite0 forward, 32 images at 224², 1.17-2.53x (load 5); build_extractor still
#   defaults to fp32 so that scores stay comparable (see metrics.extractors).
CPU_BF16_FASTER: dict[str, bool] = {
    "train": True,
    "dream": True,
    "features": True,
}

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform says."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively; LATENTSTUDIO_CPU_BF16=0/1 overrides.

    Only the flags decide: torch's get_cpu_capability() says AVX512 also on CPUs without BF16,
    where oneDNN emulates bf16 and it runs slower than fp32.
    """
    env = os.environ.get(CPU_BF16_ENV, "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device | str, workload: Workload = "train") -> str:
    """The concrete precision ("bf16", "fp16" or "fp32") of `precision` for work on `device`."""
    if precision != "auto":
        return precision
    device_type = torch.device(device).type
    if device_type == "cuda":
        # Without a GPU here (e.g. estimating one), assume a recent one.
        return "bf16" if not torch.cuda.is_available() or torch.cuda.is_bf16_supported() else "fp16"
    if device_type == "cpu" and CPU_BF16_FASTER[workload] and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def describe_precision(precision: str, device: torch.device | str,
                       workload: Workload = "train") -> str:
    """One line saying what `precision` resolves to on `device`, and why."""
    chosen = resolve_precision(precision, device, workload)
    what = "fp32" if chosen == "fp32" else f"{chosen} autocast (fp32 weights)"
    if precision != "auto":
        return f"{what} (--precision {precision})"
    device_type = torch.device(device).type
    if device_type != "cpu":
        return f"{what} (--precision auto on {device_type})"
    if os.environ.get(CPU_BF16_ENV, "").strip():
        why = f"{CPU_BF16_ENV}={os.environ[CPU_BF16_ENV].strip()}"
    elif cpu_has_native_bf16():
        why = "the CPU has " + "/".join(sorted(cpu_flags() & NATIVE_BF16_FLAGS))
    else:
        why = "the CPU has no native bf16"
    if cpu_has_native_bf16() and not CPU_BF16_FASTER[workload]:
        why += f", but bf16 is not faster for {workload}"
    return f"{what} (--precision auto on CPU: {why})"


def autocast_dtype(precision: str, device: torch.device | str,
                   workload: Workload = "train") -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (None: plain fp32)."""
    return DTYPES[resolve_precision(precision, device, workload)]


def cpu_autocast(device: torch.device | str, workload: Workload,
                 precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast for `workload` on a CPU where `precision` resolves to bf16; nothing
    elsewhere (GPU paths choose their own precision)."""
    device = torch.device(device)
    if device.type != "cpu" or resolve_precision(precision, device, workload) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)
