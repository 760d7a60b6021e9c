"""Predict the device memory a training run needs before it runs, and the largest batch that fits.

The family's real training step runs a few times on fake tensors (PyTorch's FakeTensorMode:
shapes and dtypes, no storage, no arithmetic), while a dispatch mode adds up the bytes of every
tensor alive, rounded up to 512 bytes as the CUDA caching allocator does. Its peak is what
`torch.cuda.max_memory_allocated` reports for the step: weights, gradients, optimiser state, the
EMA copy, the activations autograd saves, the temporaries of the backward pass and autocast's
weight copies. The dataset, which lives on the device, is added from its size. On a GPU the
CUDA context and the caching allocator's spare blocks come on top (CUDA_CONTEXT_BYTES,
ALLOCATOR_SLACK). Precision is simulated with CPU autocast, whose casting rules match CUDA's
for the layers used here. Not modelled: cuDNN workspaces and what torch.compile fuses away.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from latentstudio.devices import format_bytes
from latentstudio.errors import UserError
from latentstudio.models import ModelConfig, get_family
from latentstudio.precision import resolve_precision
from latentstudio.train.config import TrainConfig, model_config_for, resolve_config
from latentstudio.train.ema import EMA

BLOCK = 512  # the CUDA caching allocator rounds every allocation up to a multiple of this
CUDA_CONTEXT_BYTES = 512 * 2**20  # CUDA runtime, cuBLAS/cuDNN kernels: outside the allocator
ALLOCATOR_SLACK = 0.10  # cached but unused blocks (fragmentation) on top of the allocated peak


def _rounded(nbytes: int) -> int:
    return (nbytes + BLOCK - 1) // BLOCK * BLOCK


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of tensors alive, by storage, and their peak, as ops create them."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.live:
            return
        size = _rounded(storage.nbytes())
        self.live[key] = size
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def reset_peak(self) -> None:
        self.peak = self.current

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.track(t)
        return out


@dataclass
class MemoryEstimate:
    """Predicted device memory of one training process, in bytes."""

    model: str
    resolution: int | str  # a side, or "WIDTHxHEIGHT"
    batch_size: int
    precision: str
    device_type: str
    parameters: int  # number of trainable and frozen parameters
    parameter_bytes: int  # weights and buffers
    gradient_bytes: int
    optimizer_bytes: int
    ema_bytes: int
    activation_bytes: int  # saved activations and backward/autocast temporaries at the peak
    batch_bytes: int  # the float input batch
    data_bytes: int  # the uint8 dataset resident on the device
    peak_allocated: int  # comparable with torch.cuda.max_memory_allocated
    device_total: int  # what the device must hold: + allocator slack and CUDA context on a GPU

    def fits(self, memory_bytes: int) -> bool:
        return self.device_total <= memory_bytes


def simulation_precision(precision: str, device_type: str) -> str:
    """'auto' as training would resolve it on that kind of device (see latentstudio.precision);
    a CPU is taken to be this one."""
    return resolve_precision(precision, device_type, "train")


def _bytes(tensors: Any) -> int:
    return sum(_rounded(t.untyped_storage().nbytes()) for t in tensors if isinstance(t, torch.Tensor))


def estimate_memory(cfg: TrainConfig, *, channels: int = 3, num_classes: int = 10,
                    data_count: int = 0, device_type: str = "cuda",
                    model_config: ModelConfig | None = None) -> MemoryEstimate:
    """Memory of training `cfg` on one device with `cfg.batch_size` images per step.

    `data_count` images of the dataset sit on the device; `num_classes` is used by conditional
    families; `model_config` (when given) overrides the one derived from `cfg`.
    """
    family = get_family(cfg.model)
    cfg = resolve_config(cfg, family)
    mc = model_config or model_config_for(cfg, family, channels, num_classes)
    with warnings.catch_warnings(), _fake_mode():
        warnings.simplefilter("ignore")
        parts = step_memory(cfg, mc, device_type)
    data_bytes = data_count * mc.channels * math.prod(mc.size) + (data_count * 8 if mc.num_classes else 0)
    peak_allocated = parts["peak"] + data_bytes
    total = peak_allocated
    if device_type == "cuda":
        total = math.ceil(peak_allocated * (1 + ALLOCATOR_SLACK)) + CUDA_CONTEXT_BYTES
    steady = sum(parts[k] for k in ("parameter_bytes", "gradient_bytes", "optimizer_bytes",
                                    "ema_bytes", "batch_bytes"))
    return MemoryEstimate(
        model=cfg.model, resolution=cfg.resolution, batch_size=cfg.batch_size,
        precision=parts["precision"], device_type=device_type, parameters=parts["parameters"],
        parameter_bytes=parts["parameter_bytes"], gradient_bytes=parts["gradient_bytes"],
        optimizer_bytes=parts["optimizer_bytes"], ema_bytes=parts["ema_bytes"],
        activation_bytes=max(0, parts["peak"] - steady), batch_bytes=parts["batch_bytes"],
        data_bytes=data_bytes, peak_allocated=peak_allocated, device_total=total,
    )


def step_memory(cfg: TrainConfig, mc: ModelConfig, device_type: str = "cuda") -> dict[str, Any]:
    """Build the models and run training steps on the CPU, counting live bytes.

    Under FakeTensorMode (as estimate_memory runs it) nothing is computed; without it the same
    code measures a real CPU training step. `cfg` must be resolved (resolve_config).
    """
    from latentstudio.train.steps import step_class

    family = get_family(cfg.model)
    precision = simulation_precision(cfg.precision, device_type)
    sim_cfg = dataclasses.replace(cfg, precision=precision, device="cpu", compile=False, ema=None)
    n = cfg.batch_size
    with LiveBytes() as live:
        models = nn.ModuleDict(family.build(mc))
        step = step_class(family.hooks)(models, sim_cfg, torch.device("cpu"), 1_000_000)
        if cfg.ema:
            # EMA deep-copies its model, which fake tensors do not support: a second build of
            # the image network has the same tensors.
            ema = object.__new__(EMA)
            ema.decay = cfg.ema
            ema.shadow = nn.ModuleDict(family.build(mc))[family.hooks.image_module].eval().requires_grad_(False)
            step.ema = ema
        step.scaler = torch.amp.GradScaler("cpu", enabled=False)  # fp16 scaling reads values
        if device_type == "cuda":
            _as_on_cuda(step.optimizers.values())
        labels = torch.zeros(n, dtype=torch.long) if mc.num_classes else None
        # Steady state: optimiser state exists and every update path (n_critic) has run twice.
        for i in range(2 * (cfg.n_critic or 1)):
            real = torch.rand(n, mc.channels, mc.size[1], mc.size[0]) * 2 - 1
            step(real, labels, i)
        params = list(models.parameters())
        ema = step.ema.shadow if step.ema is not None else None
        return {
            "peak": live.peak, "precision": precision, "parameters": sum(p.numel() for p in params),
            "parameter_bytes": _bytes(params) + _bytes(models.buffers()),
            "gradient_bytes": _bytes(p for p in params if p.requires_grad),
            "optimizer_bytes": sum(_bytes(tree_leaves(o.state_dict()["state"]))
                                   for o in step.optimizers.values()),
            "ema_bytes": _bytes(ema.parameters()) + _bytes(ema.buffers()) if ema is not None else 0,
            "batch_bytes": _bytes([real]),
        }


def _as_on_cuda(optimizers: Any) -> None:
    """Make the CPU optimisers allocate as they do on CUDA: Adam fused (no temporaries), the
    others multi-tensor (temporaries for all parameters at once)."""
    for opt in optimizers:
        for group in opt.param_groups:
            if isinstance(opt, torch.optim.Adam):
                group["fused"], group["foreach"] = True, False
            else:
                group["foreach"] = True


def _fake_mode() -> Any:
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode()


def max_batch_size(cfg: TrainConfig, memory_bytes: int, **kwargs: Any) -> int:
    """The largest batch size whose estimate fits in `memory_bytes` (0 if not even 1 does).

    Memory grows linearly with the batch, so two simulations give the line and one more
    checks the answer (stepping down if the allocator's rounding tips it over).
    """
    def total(b: int) -> int:
        return estimate_memory(dataclasses.replace(cfg, batch_size=b), **kwargs).device_total

    low, high = 8, 64
    t_low, t_high = total(low), total(high)
    slope = max((t_high - t_low) / (high - low), 1.0)
    guess = int((memory_bytes - (t_low - slope * low)) // slope)
    for _ in range(5):
        if guess < 1:
            break
        t = total(guess)
        if t <= memory_bytes:
            return guess
        guess -= math.ceil((t - memory_bytes) / slope) + 1
    return 1 if total(1) <= memory_bytes else 0


def suggest_batch_size(cfg: TrainConfig, model_config: ModelConfig, memory_bytes: int,
                       data_bytes: int, world_size: int = 1) -> int:
    """The largest total --batch-size for `world_size` GPUs of `memory_bytes` each, rounded down
    to a multiple of 8 per GPU when that large (0 when nothing fits).

    `data_bytes` is the part of the dataset resident on each GPU.
    """
    budget = memory_bytes - data_bytes
    per_rank = max_batch_size(cfg, budget, model_config=model_config, device_type="cuda")
    if per_rank >= 8:
        per_rank -= per_rank % 8
    return per_rank * world_size


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20,
          "mib": 2**20, "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'8GB', '8 GiB', '7.5g', '512MB' -> bytes. GB means GiB, as GPU makers count memory."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UserError(f"cannot read memory size {text!r}: use e.g. 8GB, 12GiB or 512MB")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise UserError(f"memory size must be positive, got {text!r}")
    return int(value)


# Bytes per parameter that training holds however small the batch: fp32 weights, gradients and
# two Adam moments (RMSProp keeps one; counted as Adam to stay on the safe side).
TRAINING_BYTES_PER_PARAMETER = 16


def parameter_count(family: Any, mc: ModelConfig) -> int:
    """Parameters of the family's networks for `mc`, built on the meta device (no memory)."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = family.build(mc)
    return sum(p.numel() for net in models.values() for p in net.parameters())


def device_capacity(device: torch.device) -> int:
    """Total memory of a CUDA device, or the machine's RAM for the CPU (0 if unknown)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def check_model_fits(cfg: TrainConfig, family: Any, mc: ModelConfig, device: torch.device,
                     capacity: int | None = None) -> None:
    """Refuse, before anything is allocated, networks whose weights, gradients and optimiser state
    alone exceed the device's memory, naming the largest --width that fits."""
    capacity = device_capacity(device) if capacity is None else capacity
    if not capacity:
        return

    def need(width: int) -> int:
        params = parameter_count(family, dataclasses.replace(mc, width=width))
        ema = params if cfg.ema else 0  # an upper bound: only the image network is copied
        return params * TRAINING_BYTES_PER_PARAMETER + ema * 4

    if need(mc.width) <= capacity:
        return
    low, high = 0, mc.width  # need(high) > capacity; find the largest width that fits
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if need(mid) <= capacity else (low, mid)
    where = "GPU" if device.type == "cuda" else "machine's RAM"
    advice = f"--width {low} or less fits" if low else "try a lower --resolution"
    raise UserError(f"--width {mc.width} gives {parameter_count(family, mc):,} parameters, whose "
                    f"weights, gradients and optimiser state alone need {format_bytes(need(mc.width))}, "
                    f"more than the {format_bytes(capacity)} of this {where}: {advice}")
