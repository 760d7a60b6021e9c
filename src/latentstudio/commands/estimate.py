"""`latentstudio estimate`: the device memory a training run needs, and the largest batch that fits."""

from __future__ import annotations

import argparse
from typing import Any

from latentstudio.errors import UserError


def _row(label: str, nbytes: int, note: str = "") -> str:
    from latentstudio.train.memory import format_bytes

    return f"  {label:<28}{format_bytes(nbytes):>11}{'   ' + note if note else ''}"


def report(est: Any, memory_bytes: int | None = None) -> list[str]:
    """The printed lines for a MemoryEstimate."""
    from latentstudio.train.memory import ALLOCATOR_SLACK, CUDA_CONTEXT_BYTES, format_bytes

    where = "a CUDA GPU" if est.device_type == "cuda" else "the CPU"
    lines = [
        f"{est.model} at {est.resolution} px, batch {est.batch_size}, {est.precision}, on {where}:",
        _row("parameters", est.parameter_bytes, f"{est.parameters / 1e6:.2f} M weights (+ buffers)"),
        _row("gradients", est.gradient_bytes),
        _row("optimiser state", est.optimizer_bytes),
    ]
    if est.ema_bytes:
        lines.append(_row("EMA copy", est.ema_bytes))
    lines += [
        _row("activations + temporaries", est.activation_bytes, "at the step's peak"),
        _row("input batch", est.batch_bytes),
        _row("dataset on the device", est.data_bytes, "uint8"),
        _row("peak allocated", est.peak_allocated, "(torch.cuda.max_memory_allocated)"
             if est.device_type == "cuda" else ""),
    ]
    if est.device_type == "cuda":
        lines.append(_row("predicted device memory", est.device_total,
                          f"+{ALLOCATOR_SLACK:.0%} allocator cache, "
                          f"+{format_bytes(CUDA_CONTEXT_BYTES)} CUDA context"))
    if memory_bytes is not None:
        verdict = "fits" if est.fits(memory_bytes) else "does NOT fit"
        lines.append(f"  {verdict} in {format_bytes(memory_bytes)}")
    return lines


def cmd_estimate(args: argparse.Namespace) -> int:
    from latentstudio.train.config import TrainConfig
    from latentstudio.train.memory import estimate_memory, format_bytes, max_batch_size, parse_bytes

    memory = parse_bytes(args.memory) if args.memory else None
    if args.max_batch and memory is None:
        raise UserError("--max-batch needs --memory, e.g. --memory 8GB")
    if args.images < 0 or args.classes < 1:
        raise UserError("--images must not be negative and --classes must be at least 1")
    settings = {k: getattr(args, k) for k in ("model", "resolution", "batch_size", "precision",
                                              "width", "latent_dim", "ema")
                if getattr(args, k) is not None}
    cfg = TrainConfig(**settings)
    kwargs = dict(channels=args.channels, num_classes=args.classes, data_count=args.images,
                  device_type=args.device)
    for line in report(estimate_memory(cfg, **kwargs), memory):
        print(line)
    if args.max_batch:
        best = max_batch_size(cfg, memory, **kwargs)
        if best:
            print(f"largest batch that fits in {format_bytes(memory)}: --batch-size {best}")
        else:
            print(f"not even a batch of 1 fits in {format_bytes(memory)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate", help="predict the GPU memory a training run needs",
        description="Predict the device memory of training (weights, gradients, optimiser state, "
                    "activations, dataset, peak) by running the training step on fake tensors. "
                    "Example: latentstudio estimate --model dcgan --resolution 64 --batch-size 128 "
                    "--precision bf16 --max-batch --memory 8GB",
    )
    p.add_argument("--model", default="dcgan", help="model family [default: dcgan]")
    p.add_argument("--resolution", default=32,
                   help="image size in pixels, e.g. 64, or WIDTHxHEIGHT like 64x128 [default: 32]")
    p.add_argument("--batch-size", type=int, default=64, help="images per step [default: 64]")
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"],
                   help="auto (bf16 on GPUs, fp32 on CPUs), bf16, fp16 or fp32 [default: auto]")
    p.add_argument("--width", type=int, help="network width (default: the model's)")
    p.add_argument("--latent-dim", type=int, help="size of the latent vector [default: 100]")
    p.add_argument("--ema", type=float, help="include an EMA copy of the generator, e.g. 0.999")
    p.add_argument("--channels", type=int, choices=[1, 2, 3, 4], default=3,
                   help="image channels: 1 gray, 3 colour, 2/4 with alpha [default: 3]")
    p.add_argument("--classes", type=int, default=10,
                   help="classes, for conditional models [default: 10]")
    p.add_argument("--images", type=int, default=10000,
                   help="dataset size; training keeps it on the device [default: 10000]")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                   help="the device to estimate for [default: cuda]")
    p.add_argument("--memory", help="device memory to check against, e.g. 8GB (GB = GiB)")
    p.add_argument("--max-batch", action="store_true",
                   help="also print the largest batch size that fits in --memory")
    p.set_defaults(func=cmd_estimate)
