"""Feature-extraction throughput (images/s) of the metric extractors, for 10k images at 32 px.

Each extractor runs its full pipeline (uint8 on the host -> device -> resize -> network ->
features on the host) in the layout the library uses (channels_last), against a baseline in the
same run: plain NCHW. On CUDA, and on a CPU with native bf16 (where `auto` extracts in bf16),
it also times bf16 autocast and reports how far its features drift from fp32 (max abs
difference and the Fréchet distance between the two feature sets).
Weights do not change speed, so `inception` runs with random weights when none are at hand.

    python benchmarks/feature_speed.py                # 10k images; results JSON when on a GPU
    python benchmarks/feature_speed.py --quick        # a few images, CPU, nothing written

Results go to benchmarks/results/feature_speed-<device>.json only when run on a GPU (or --save).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from latentstudio.data.shapes import make_shapes
from latentstudio.metrics.extractors import Extractor, extract_features
from latentstudio.metrics.fid import frechet_distance
from latentstudio.precision import cpu_flags, resolve_precision

RESULTS = Path(__file__).parent / "results"


def make_extractor(name: str, device: str, channels_last: bool,
                   inception_weights: str | None) -> Extractor:
    """The extractor as the library builds it, with its weights but a chosen memory layout."""
    if name == "lite0":
        from latentstudio.metrics.extractors.lite0 import Lite0Features
        from latentstudio.models.lite0 import load_lite0

        net, dim, size = Lite0Features(load_lite0()), 1280, 224
    elif name == "inception":
        from latentstudio.metrics.extractors.inception import FIDInceptionV3, load_fid_inception

        net = load_fid_inception(inception_weights) if inception_weights else FIDInceptionV3()
        dim, size = 2048, 299
    elif name == "domain":
        from latentstudio.metrics.extractors.domain import DomainNet

        net, dim, size = DomainNet(3), 128, None
    else:
        raise SystemExit(f"unknown extractor {name!r}")
    net = net.eval().to(device).requires_grad_(False)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return Extractor(name, name, dim, net, size, True, device, channels_last)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_variant(extractor: Extractor, images: torch.Tensor, batch_size: int,
                 bf16: bool) -> tuple[float, np.ndarray]:
    """Seconds for all images (after one warm-up batch) and the features."""
    device_type = torch.device(extractor.device).type
    ctx = torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        extract_features(extractor, images[:batch_size], batch_size, progress=False)
        _sync(extractor.device)
        t = time.perf_counter()
        feats = extract_features(extractor, images, batch_size, progress=True, desc="benchmark")
        _sync(extractor.device)
    return time.perf_counter() - t, feats


def run(args: argparse.Namespace) -> dict:
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    images = make_shapes(args.n, args.resolution, 3, seed=0).images
    print(f"{args.n} shapes images at {args.resolution} px on {device}", file=sys.stderr)
    rows = []
    for name in args.extractors.split(","):
        variants = [("nchw fp32", False, False), ("channels_last fp32", True, False)]
        if device.startswith("cuda") or resolve_precision("auto", "cpu", "features") == "bf16":
            variants.append(("channels_last bf16", True, True))
        baseline = None
        for label, channels_last, bf16 in variants:
            torch.manual_seed(0)  # identical random weights for every variant
            extractor = make_extractor(name, device, channels_last, args.inception_weights)
            seconds, feats = time_variant(extractor, images, args.batch_size, bf16)
            row = {"extractor": name, "variant": label, "images_per_s": round(args.n / seconds, 1),
                   "seconds": round(seconds, 3)}
            if baseline is None:
                baseline = feats
            else:
                row["max_abs_diff_vs_baseline"] = float(np.abs(feats - baseline).max())
                if len(feats) > 2 * feats.shape[1]:  # FD needs more samples than dimensions
                    row["fd_vs_baseline"] = frechet_distance(baseline, feats)
            if bf16:
                fp32 = next(r for r in rows if r["extractor"] == name and r["variant"] == "channels_last fp32")
                row["speedup_vs_fp32"] = round(fp32["seconds"] / seconds, 3)
            rows.append(row)
            print(f"  {name:<10} {label:<20} {row['images_per_s']:>9.1f} images/s", file=sys.stderr)
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else \
        (platform.processor() or platform.machine())
    return {"device": device, "device_name": gpu, "torch": torch.__version__, "n": args.n,
            "resolution": args.resolution, "batch_size": args.batch_size,
            "cpu_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "avx512f"}),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "inception_weights": "pytorch-fid" if args.inception_weights else "random (speed only)",
            "time": time.strftime("%Y-%m-%d %H:%M:%S"), "results": rows}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10000, help="images [default: 10000]")
    p.add_argument("--resolution", type=int, default=32, help="pixels [default: 32]")
    p.add_argument("--extractors", default="lite0,inception,domain")
    p.add_argument("--batch-size", type=int, default=None,
                   help="[default: 256 on a GPU, 64 on a CPU]")
    p.add_argument("--device", default="auto")
    p.add_argument("--inception-weights", help="pytorch-fid weights (default: random, same speed)")
    p.add_argument("--quick", action="store_true", help="a few images on the CPU: a smoke test")
    p.add_argument("--save", action="store_true", help="write results even when not on a GPU")
    p.add_argument("--out", help="results JSON [default: results/feature_speed-<device>.json]")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.device, args.extractors = 4, "cpu", "lite0,domain"
        args.batch_size = args.batch_size or 4
    on_gpu = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    args.batch_size = args.batch_size or (256 if on_gpu else 64)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = run(args)
    if result["device"].startswith("cuda") or args.save:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", result["device_name"] or result["device"]).strip("-")
        out = Path(args.out) if args.out else RESULTS / f"feature_speed-{slug.lower()}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
