"""Predicted against measured training memory, for every model family, resolution and 3 batch sizes.

The prediction is `latentstudio.train.memory.estimate_memory(...).peak_allocated` (the training
step simulated on fake tensors, plus the dataset on the device). On a GPU the measurement is
the real Trainer (data on the GPU, channels_last, cudnn.benchmark, fused Adam, autocast): its
first 2 x n_critic steps warm up (cuDNN's autotuning), then the peak statistics are reset and
torch.cuda.max_memory_allocated is read after 2 x n_critic more steps. On a CPU (--quick, for
the tests) the measurement is the same step run on real CPU tensors, its live bytes counted.
The error is (predicted - measured) / measured; the goal on a GPU is within +-20%.

    python benchmarks/memory_check.py                          # GPU: 32/64/128 px x 3 batches
    python benchmarks/memory_check.py --quick --out /tmp/mem   # CPU, tiny
Results: benchmarks/results/memory_check_<device>.json and .md (--out chooses the folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from latentstudio.models import FAMILIES, get_family
from latentstudio.train.config import TrainConfig, model_config_for, resolve_config
from latentstudio.train.loop import Trainer
from latentstudio.train.memory import estimate_memory, format_bytes, step_memory

RESULTS = Path(__file__).parent / "results"
SHAPES_CLASSES = 4


def measure_cuda(cfg: TrainConfig, data_count: int, tmp: Path) -> int:
    """torch.cuda.max_memory_allocated over steady-state steps of the real Trainer."""
    gc.collect()
    torch.cuda.empty_cache()
    trainer = Trainer(dataclasses.replace(cfg, data=f"shapes:{data_count}"), tmp, progress=False)
    n = 2 * (trainer.config.n_critic or 1)
    batches = trainer.loader.batches(0)
    try:
        for i in range(2 * n):
            if i == n:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            real, labels = next(batches)
            trainer.updater(real, labels, i)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    finally:
        del trainer, batches
        gc.collect()
        torch.cuda.empty_cache()


def measure_cpu(cfg: TrainConfig, data_count: int) -> int:
    """Live bytes of the same training step on real CPU tensors, plus the dataset."""
    family = get_family(cfg.model)
    resolved = resolve_config(cfg, family)
    mc = model_config_for(resolved, family, 3, SHAPES_CLASSES)
    torch.manual_seed(0)
    peak = step_memory(resolved, mc, device_type="cpu")["peak"]
    return peak + data_count * 3 * mc.resolution ** 2 + (data_count * 8 if mc.num_classes else 0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cuda = args.device == "cuda"
    get_family("dcgan")  # registers every family
    families = args.models or sorted(FAMILIES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in families:
            for res in args.resolutions:
                for batch in args.batch_sizes:
                    cfg = TrainConfig(model=model, resolution=res, batch_size=batch,
                                      precision=args.precision, device=args.device, seed=0)
                    if args.width:
                        cfg = dataclasses.replace(cfg, width=args.width)
                    data_count = batch  # one batch of images resident on the device
                    t = time.perf_counter()
                    est = estimate_memory(cfg, channels=3, num_classes=SHAPES_CLASSES,
                                          data_count=data_count,
                                          device_type="cuda" if cuda else "cpu")
                    t_est = time.perf_counter() - t
                    try:
                        measured = (measure_cuda(cfg, data_count, Path(tmp)) if cuda
                                    else measure_cpu(cfg, data_count))
                    except torch.cuda.OutOfMemoryError:
                        measured = None
                    err = None if measured is None else (est.peak_allocated - measured) / measured
                    rows.append({"model": model, "resolution": res, "batch": batch,
                                 "precision": est.precision, "predicted": est.peak_allocated,
                                 "measured": measured, "error": err,
                                 "predicted_device_total": est.device_total,
                                 "estimate_seconds": t_est})
                    shown = "OOM" if err is None else f"{err:+.1%}"
                    print(f"{model:>10} {res:>4}px batch {batch:>4}: predicted "
                          f"{format_bytes(est.peak_allocated):>10}, measured "
                          f"{format_bytes(measured) if measured else '-':>10} ({shown})",
                          file=sys.stderr)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    errors = [abs(r["error"]) for r in rows if r["error"] is not None]
    return {"device": args.device, "device_name": name, "torch": torch.__version__,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick,
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "max_abs_error": max(errors) if errors else None,
            "within_20_percent": sum(e <= 0.2 for e in errors), "count": len(errors),
            "results": rows}


def markdown(result: dict[str, Any]) -> str:
    what = ("torch.cuda.max_memory_allocated of the real Trainer" if result["device"] == "cuda"
            else "live bytes of the same step on real CPU tensors (not a GPU measurement)")
    lines = [f"# Training memory: predicted vs measured ({result['device_name']})", "",
             f"Measured {result['time']} with `python benchmarks/memory_check.py"
             f"{' --quick' if result['quick'] else ''}`, torch {result['torch']}; measured = {what}; "
             f"error = (predicted - measured) / measured.", "",
             f"Within +-20%: {result['within_20_percent']} of {result['count']}; "
             f"largest error {result['max_abs_error']:.1%}." if result["count"] else "", "",
             "| model | px | batch | precision | predicted | measured | error |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for r in result["results"]:
        measured = format_bytes(r["measured"]) if r["measured"] else "OOM"
        err = f"{r['error']:+.1%}" if r["error"] is not None else "-"
        lines.append(f"| {r['model']} | {r['resolution']} | {r['batch']} | {r['precision']} | "
                     f"{format_bytes(r['predicted'])} | {measured} | {err} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes on the CPU (tests); writes only with --out")
    p.add_argument("--device", default="auto", help="auto, cuda or cpu")
    p.add_argument("--models", type=lambda t: t.split(","), help="comma-separated [default: all]")
    p.add_argument("--resolutions", type=lambda t: [int(v) for v in t.split(",")])
    p.add_argument("--batch-sizes", type=lambda t: [int(v) for v in t.split(",")])
    p.add_argument("--width", type=int, help="network width [default: each family's]")
    p.add_argument("--precision", default="auto", help="auto, bf16, fp16 or fp32 [default: auto]")
    p.add_argument("--out", help="folder for the JSON and markdown [default: benchmarks/results]")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
    defaults = ({"resolutions": [32], "batch_sizes": [4, 8], "width": args.width or 8,
                 "models": args.models or ["dcgan", "cgan", "vae-conv"]} if args.quick else
                {"resolutions": [32, 64, 128], "batch_sizes": [32, 128, 512]})
    for k, v in defaults.items():
        if getattr(args, k) is None or k in ("width", "models"):
            setattr(args, k, v)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = run(args)
    if args.out or not args.quick:
        out = Path(args.out) if args.out else RESULTS
        slug = re.sub(r"[^a-z0-9]+", "-", result["device_name"].lower()).strip("-")
        out.mkdir(parents=True, exist_ok=True)
        (out / f"memory_check_{slug}.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / f"memory_check_{slug}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
