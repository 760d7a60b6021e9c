"""Training speed of latentstudio against the PyTorch examples DCGAN, measured in the same run.

(a) Baseline: pytorch/examples dcgan/main.py: its Generator and Discriminator at 64 px (nz=100,
    ngf=ndf=64, Sigmoid + BCELoss), its weight init, Adam(2e-4, betas (0.5, 0.999)) for both,
    fp32 eager, its three-pass step (D on real, D on fake, G), images read one by one by a PIL
    Dataset through a DataLoader (shuffle, 2 workers, as in the example), with the example's
    Resize/CenterCrop/ToTensor/Normalize written out by hand (torchvision is not a dependency).
    The example's per-iteration `.item()` logging and image saving are left out, which only
    makes the baseline faster.
(b) latentstudio: `dcgan` at 64 px, width 64, latent 100 (the same layers, checked by parameter
    count) on the same PNG files, trained by its own loop (Trainer.fit) with its defaults for
    the device (bf16 autocast, channels_last, fused Adam and the dataset on the GPU).
    On a CPU whose `auto` is bf16 (native AVX-512 BF16 / AMX) it runs in fp32 and in bf16, so
    the table has both beside the baseline, all in the same run.
(c) The conv VAE (`vae-conv`, 64 px, width 64) and FastGAN (`fastgan`, 64 px, width 16) in fp32
    and in bf16 on a CPU with native bf16 (no outside baseline here): the bf16 speed-up alone.

Both report images/s over the same number of steps after a warm-up; MFU is FLOPs per image of
each training step (torch.utils.flop_counter.FlopCounterMode) x images/s / the device's matrix
multiply rate measured in the same run (bf16 on a GPU, fp32 on a CPU).

    python benchmarks/train_speed.py                  # batch 128 and 512 on the default device
    python benchmarks/train_speed.py --quick --out /tmp/speed   # tiny sizes, for the CPU tests
Results: benchmarks/results/train_speed_<device>.json and .md (--out chooses the folder).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from latentstudio.data.shapes import make_shapes
from latentstudio.images import to_pil
from latentstudio.models import get_family
from latentstudio.precision import cpu_flags, cpu_model, resolve_precision
from latentstudio.train.callbacks import Callback
from latentstudio.train.config import TrainConfig, model_config_for, resolve_config
from latentstudio.train.loop import Trainer
from latentstudio.train.steps import AdversarialStep

RESULTS = Path(__file__).parent / "results"
FASTGAN_WIDTH = 16  # the few-shot family at the width a CPU gets for a folder above 128 px
RESOLUTION, NZ = 64, 100


# ----- (a) the PyTorch examples DCGAN, as in dcgan/main.py
class ExampleGenerator(nn.Module):
    def __init__(self, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class ExampleDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def weights_init(m: nn.Module) -> None:
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class PngFolder(Dataset):
    """ImageFolder + Resize + CenterCrop + ToTensor + Normalize(0.5, 0.5), by hand."""

    def __init__(self, root: Path, size: int) -> None:
        self.paths = sorted(root.rglob("*.png"))
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with open(self.paths[i], "rb") as f:
            img = Image.open(f).convert("RGB")
        w, h = img.size
        if min(w, h) != self.size:  # Resize(size): the shorter side to `size`
            s = self.size / min(w, h)
            img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
            w, h = img.size
        left, top = (w - self.size) // 2, (h - self.size) // 2  # CenterCrop(size)
        img = img.crop((left, top, left + self.size, top + self.size))
        x = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).contiguous()
        x = x.to(torch.float32).div(255)  # ToTensor
        return (x - 0.5) / 0.5, 0  # Normalize((0.5,) * 3, (0.5,) * 3)


class ExampleStep:
    """One iteration of the example's training loop."""

    def __init__(self, width: int, device: torch.device) -> None:
        self.G = ExampleGenerator(width).to(device)
        self.D = ExampleDiscriminator(width).to(device)
        self.G.apply(weights_init)
        self.D.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.device = device

    def __call__(self, real_cpu: torch.Tensor) -> None:
        self.D.zero_grad()
        real = real_cpu.to(self.device)
        n = real.size(0)
        label = torch.full((n,), 1.0, dtype=real.dtype, device=self.device)
        err_real = self.criterion(self.D(real), label)
        err_real.backward()
        noise = torch.randn(n, NZ, 1, 1, device=self.device)
        fake = self.G(noise)
        label.fill_(0.0)
        err_fake = self.criterion(self.D(fake.detach()), label)
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        label.fill_(1.0)
        err_g = self.criterion(self.D(fake), label)
        err_g.backward()
        self.opt_g.step()


# ----- measurements
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_baseline(root: Path, batch: int, width: int, warmup: int, steps: int, workers: int,
                 device: torch.device) -> float:
    """Images/s of the example's loop over `steps` iterations after `warmup`."""
    torch.manual_seed(0)
    step = ExampleStep(width, device)
    loader = DataLoader(PngFolder(root, RESOLUTION), batch_size=batch, shuffle=True,
                        num_workers=workers)
    done, images, t0 = 0, 0, 0.0
    while done < warmup + steps:
        for real, _ in loader:
            if done == warmup:
                sync(device)
                t0 = time.perf_counter()
            step(real)
            done += 1
            images += real.shape[0] if done > warmup else 0
            if done == warmup + steps:
                break
    sync(device)
    return images / (time.perf_counter() - t0)


class _Clock(Callback):
    """(step, time) at every log flush, which waits for the device (the loop's one sync)."""

    def __init__(self) -> None:
        self.marks: dict[int, float] = {}

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
        self.marks[trainer.step] = time.perf_counter()


def ours_config(root: Path, batch: int, width: int, steps: int, log_every: int, device: str,
                precision: str, compile_: bool, out: Path, model: str = "dcgan") -> TrainConfig:
    return TrainConfig(model=model, data=f"folder:{root}", resolution=RESOLUTION, width=width,
                       latent_dim=NZ, batch_size=batch, steps=steps, log_every=log_every,
                       preview_every=10**6, checkpoint_every=10**6, preview_count=4, seed=0,
                       device=device, precision=precision, compile=compile_, out=str(out))


def run_ours(cfg: TrainConfig, warmup: int, steps: int) -> tuple[float, Trainer]:
    """Images/s of latentstudio's loop between the log flushes at `warmup` and `warmup + steps`."""
    clock = _Clock()
    trainer = Trainer(cfg, Path(cfg.out), [clock], progress=False)
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    trainer.fit()
    first, last = clock.marks[warmup], clock.marks[warmup + steps]
    return steps * cfg.batch_size / (last - first), trainer


def flops_per_image(fn: Any, n: int = 2) -> float:
    """FLOPs of fn(n) counted by FlopCounterMode, per image (conv and matmul FLOPs)."""
    with FlopCounterMode(display=False) as counter:
        fn(n)
    return counter.get_total_flops() / n


def baseline_flops(width: int) -> float:
    step = ExampleStep(width, torch.device("cpu"))
    return flops_per_image(lambda n: step(torch.rand(n, 3, RESOLUTION, RESOLUTION) * 2 - 1))


def ours_flops(width: int) -> tuple[float, int]:
    """FLOPs per image of latentstudio's dcgan step (fp32 on the CPU: the count is the same),
    and its parameter count."""
    family = get_family("dcgan")
    cfg = resolve_config(TrainConfig(model="dcgan", resolution=RESOLUTION, width=width,
                                     latent_dim=NZ, precision="fp32"), family)
    models = nn.ModuleDict(family.build(model_config_for(cfg, family, 3, 0)))
    step = AdversarialStep(models, cfg, torch.device("cpu"), 10)
    flops = flops_per_image(lambda n: step(torch.rand(n, 3, RESOLUTION, RESOLUTION) * 2 - 1, None, 0))
    return flops, sum(p.numel() for p in models.parameters())


def matmul_rate(device: torch.device, quick: bool) -> tuple[float, str]:
    """Measured FLOP/s of a large matrix product: bf16 on a GPU, fp32 on a CPU (best of 3)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = (8192 if device.type == "cuda" else 1024) if not quick else 256
    reps = 50 if device.type == "cuda" else 5
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3 if device.type == "cuda" or quick else 10):  # best of many on a shared CPU
        sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best, str(dtype).replace("torch.", "")


def write_images(root: Path, count: int) -> None:
    """`count` shapes images at 64 px as PNG files under root/images/."""
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    data = make_shapes(count, RESOLUTION, 3, seed=0)
    for i, img in enumerate(data.images):
        to_pil(img.float().div(127.5).sub(1)).save(folder / f"{i:06d}.png")


def precisions_timed(precision: str, device: torch.device) -> list[str]:
    """latentstudio's precisions to time: `precision` as it resolves, with fp32 beside it on a CPU
    where that is bf16 (the last one is the resolved choice)."""
    chosen = resolve_precision(precision, device, "train")
    return ["fp32", chosen] if device.type == "cpu" and chosen != "fp32" else [chosen]


def time_vae(root: Path, batch: int, width: int, args: argparse.Namespace, device: torch.device,
             tmp: Path, model: str = "vae-conv") -> dict[str, Any] | None:
    """`model`'s images/s in fp32 and bf16, alternating (None where bf16 is not the CPU's auto)."""
    if precisions_timed(args.precision, device) != ["fp32", "bf16"]:
        return None
    runs: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(args.repeats):
        for p in runs:
            cfg = ours_config(root, batch, width, args.warmup + args.steps, args.log_every,
                              str(device), p, False, tmp / f"{model}{batch}-{p}-{r}", model=model)
            runs[p].append(run_ours(cfg, args.warmup, args.steps)[0])
    ratio = statistics.median(b / f for f, b in zip(runs["fp32"], runs["bf16"], strict=True))
    print(f"{model} batch {batch}: bf16 / fp32 {ratio:.2f}", file=sys.stderr)
    return {"batch": batch, "fp32_images_per_s": statistics.median(runs["fp32"]),
            "bf16_images_per_s": statistics.median(runs["bf16"]), "bf16_vs_fp32": ratio,
            "fp32_runs": runs["fp32"], "bf16_runs": runs["bf16"]}


def machine(device: torch.device) -> dict[str, Any]:
    from latentstudio.train.distributed import available_cpus

    cpu = cpu_model()

    info = {"device": device.type, "cpu": cpu, "cpus_available": available_cpus(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_bf16_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile",
                                                    "avx512f", "avx512_vnni"}),
            "python": platform.python_version(), "platform": platform.platform()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = "cpu"
    try:
        git = ["git", "-C", str(Path(__file__).parent)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", "."],
                               capture_output=True, text=True, cwd=Path(__file__).parents[1])
        info["git"] = head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        pass
    return info


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device if args.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    result: dict[str, Any] = {"machine": machine(device), "quick": args.quick,
                              "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "settings": {k: v for k, v in vars(args).items() if k != "out"}}
    rate, dtype = matmul_rate(device, args.quick)
    result["matmul"] = {"dtype": dtype, "tflops": rate / 1e12}
    f_base = baseline_flops(args.width)
    f_ours, params = ours_flops(args.width)
    base_params = sum(p.numel() for m in (ExampleGenerator(args.width), ExampleDiscriminator(args.width))
                      for p in m.parameters())
    if params != base_params:
        raise SystemExit(f"architectures differ: {params} parameters against {base_params}")
    result["parameters"] = params
    result["flops_per_image"] = {"baseline": f_base, "latentstudio": f_ours}
    rows, vae_rows, fastgan_rows = [], [], []
    precisions = precisions_timed(args.precision, device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_images(root, args.images)
        for batch in args.batch_sizes:
            # Repeats alternate baseline and ours (fp32, then bf16 where timed), so a change in
            # machine load hits all alike.
            bases: list[float] = []
            ourses: dict[str, list[float]] = {p: [] for p in precisions}
            for r in range(args.repeats):
                bases.append(run_baseline(root, batch, args.width, args.warmup, args.steps,
                                          args.workers, device))
                for p in precisions:
                    cfg = ours_config(root, batch, args.width, args.warmup + args.steps,
                                      args.log_every, str(device), p, args.compile,
                                      Path(tmp) / f"run{batch}-{p}-{r}")
                    speed, trainer = run_ours(cfg, args.warmup, args.steps)
                    ourses[p].append(speed)
            chosen = ourses[precisions[-1]]
            base, ours = statistics.median(bases), statistics.median(chosen)
            # Each pair ran back to back under the same machine load: the ratio is theirs.
            ratio = statistics.median(o / b for o, b in zip(chosen, bases, strict=True))
            row = {
                "batch": batch, "baseline_images_per_s": base, "latentstudio_images_per_s": ours,
                "ratio": ratio, "precision": trainer.updater.precision,
                "mfu_baseline": base * f_base / rate, "mfu_latentstudio": ours * f_ours / rate,
                "baseline_runs": bases, "latentstudio_runs": chosen,
            }
            if len(precisions) == 2:
                fp32 = ourses["fp32"]
                row.update(fp32_images_per_s=statistics.median(fp32), fp32_runs=fp32,
                           fp32_ratio=statistics.median(o / b for o, b in zip(fp32, bases, strict=True)),
                           bf16_vs_fp32=statistics.median(o / f for o, f in zip(chosen, fp32, strict=True)))
            rows.append(row)
            print(f"batch {batch}: baseline {base:.1f} img/s, latentstudio {ours:.1f} img/s "
                  f"({row['precision']}), ratio {ratio:.2f}, MFU {row['mfu_latentstudio']:.1%}"
                  + (f"; bf16 / fp32 {row['bf16_vs_fp32']:.2f}" if "bf16_vs_fp32" in row else ""),
                  file=sys.stderr)
            if args.vae:
                vae = time_vae(root, batch, args.width, args, device, Path(tmp))
                if vae is not None:
                    vae_rows.append(vae)
                few = time_vae(root, batch, FASTGAN_WIDTH, args, device, Path(tmp), "fastgan")
                if few is not None:
                    fastgan_rows.append(few)
    result["results"] = rows
    result["vae"] = vae_rows
    result["fastgan"] = fastgan_rows
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    s = result["settings"]
    lines = [
        f"# Training speed: latentstudio vs the PyTorch examples DCGAN ({m['device_name']})",
        "",
        f"Measured {result['time']} with `{result['command']}` (git {m.get('git', '?')}), both "
        "in the same run.",
        "",
        f"- device: {m['device_name']}; CPU: {m['cpu']} ({m['cpus_available']} available, "
        f"{m['torch_threads']} torch threads; flags: {' '.join(m.get('cpu_bf16_flags', [])) or '-'}); "
        f"torch {m['torch']}, Python {m['python']}; "
        f"load average {m['load_average'][0]:.1f} before, {m['load_average_after'][0]:.1f} after",
        f"- DCGAN at {RESOLUTION} px, width {s['width']}, latent {NZ}: {result['parameters']:,} "
        f"parameters in both; {s['images']} shapes PNGs; {s['warmup']} warm-up + {s['steps']} "
        f"timed steps; {s['repeats']} alternating pair(s) of runs: medians, and the ratio is the "
        f"median of the pairs' ratios; baseline DataLoader "
        f"workers: {s['workers']}; latentstudio precision: "
        f"{s['precision']}{', --compile' if s['compile'] else ''}",
        f"- FLOPs per image of one training step: baseline {result['flops_per_image']['baseline'] / 1e9:.3f} G, "
        f"latentstudio {result['flops_per_image']['latentstudio'] / 1e9:.3f} G (it skips the "
        "discriminator's weight gradients in the generator update)",
        f"- matrix multiply rate measured here: {result['matmul']['tflops']:.2f} TFLOP/s "
        f"({result['matmul']['dtype']}), the MFU denominator",
        "",
        "| batch | baseline img/s | latentstudio img/s | ratio | latentstudio precision | MFU baseline | MFU latentstudio |",
        "|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in result["results"]:
        lines.append(f"| {r['batch']} | {r['baseline_images_per_s']:.1f} | "
                     f"{r['latentstudio_images_per_s']:.1f} | {r['ratio']:.2f} | {r['precision']} | "
                     f"{r['mfu_baseline']:.1%} | {r['mfu_latentstudio']:.1%} |")
    both = [r for r in result["results"] if "bf16_vs_fp32" in r]
    if both:
        lines += ["", "On this CPU `auto` is bf16 (native bf16); latentstudio in fp32 was timed in "
                  "the same run, alternating with the baseline and bf16 (MFU above: against the "
                  "fp32 matrix multiply rate, so bf16 can exceed what fp32 allows):", "",
                  "| batch | baseline img/s | latentstudio fp32 img/s | fp32 / baseline | "
                  "latentstudio bf16 img/s | bf16 / baseline | bf16 / fp32 |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in both:
            lines.append(f"| {r['batch']} | {r['baseline_images_per_s']:.1f} | "
                         f"{r['fp32_images_per_s']:.1f} | {r['fp32_ratio']:.2f} | "
                         f"{r['latentstudio_images_per_s']:.1f} | {r['ratio']:.2f} | "
                         f"{r['bf16_vs_fp32']:.2f} |")
    for key, title in (("vae", f"Conv VAE (vae-conv, {RESOLUTION} px, width {s['width']})"),
                       ("fastgan", f"FastGAN (fastgan, {RESOLUTION} px, width {FASTGAN_WIDTH})")):
        if not result.get(key):
            continue
        lines += ["", f"{title}, same PNGs, fp32 and bf16 alternating:", "",
                  "| batch | fp32 img/s | bf16 img/s | bf16 / fp32 |", "|---:|---:|---:|---:|"]
        for r in result[key]:
            lines.append(f"| {r['batch']} | {r['fp32_images_per_s']:.1f} | "
                         f"{r['bf16_images_per_s']:.1f} | {r['bf16_vs_fp32']:.2f} |")
    if s["repeats"] > 1:
        lines.append("")
        for r in result["results"]:
            runs = ", ".join(f"{b:.1f} / {o:.1f}" for b, o in
                             zip(r["baseline_runs"], r["latentstudio_runs"], strict=True))
            lines.append(f"Batch {r['batch']}, each pair (baseline / latentstudio img/s): {runs}.")
            if "fp32_runs" in r:
                lines.append(f"Batch {r['batch']}, latentstudio fp32 runs: "
                             f"{', '.join(f'{v:.1f}' for v in r['fp32_runs'])}.")
    if m["device"] == "cuda":
        lines += ["", "Goal on an H100: ratio >= 2.5 and MFU >= 35%."]
    else:
        lines += ["", "CPU run: the goal here is a ratio >= 1.0; these are not GPU results. On a "
                  "machine shared with other work (see the load average) single runs swing "
                  "widely, so the ratio is taken pair by pair, and MFU against a separately "
                  "timed matrix product is only indicative."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes (CPU tests); writes only with --out")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-sizes", type=lambda t: [int(v) for v in t.split(",")], default=None,
                   help="comma-separated [default: 128,512; --quick: 8]")
    p.add_argument("--steps", type=int, help="timed steps [default: 100; --quick: 2]")
    p.add_argument("--warmup", type=int, help="untimed steps first [default: 20; --quick: 2]")
    p.add_argument("--images", type=int, help="PNG files [default: 16384; --quick: 32]")
    p.add_argument("--width", type=int, help="ngf = ndf [default: 64; --quick: 8]")
    p.add_argument("--workers", type=int, help="baseline DataLoader workers [default: 2; --quick: 0]")
    p.add_argument("--precision", default="auto", help="latentstudio's --precision [default: auto]")
    p.add_argument("--compile", action="store_true", help="latentstudio with --compile")
    p.add_argument("--no-vae", dest="vae", action="store_false",
                   help="skip the conv VAE's and FastGAN's fp32 / bf16 timing (CPUs with native "
                        "bf16 only)")
    p.add_argument("--repeats", type=int, default=1,
                   help="alternate baseline and latentstudio this many times; report the medians")
    p.add_argument("--out", help="folder for the JSON and markdown [default: benchmarks/results]")
    args = p.parse_args(argv)
    quick = {"batch_sizes": [8], "steps": 2, "warmup": 2, "images": 32, "width": 8, "workers": 0}
    full = {"batch_sizes": [128, 512], "steps": 100, "warmup": 20, "images": 16384, "width": 64,
            "workers": 2}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    # The loop logs (and syncs) every log_every steps; both ends of the timed window must be one.
    args.log_every = math.gcd(args.warmup, args.steps, 10)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = run(args)
    result["command"] = shlex.join(["python", "benchmarks/train_speed.py",
                                    *(sys.argv[1:] if argv is None else argv)])
    if args.out or not args.quick:
        out = Path(args.out) if args.out else RESULTS
        slug = re.sub(r"[^a-z0-9]+", "-", result["machine"]["device_name"].lower()).strip("-")
        out.mkdir(parents=True, exist_ok=True)
        (out / f"train_speed_{slug}.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / f"train_speed_{slug}.md").write_text(markdown(result))
        print(f"wrote {out / f'train_speed_{slug}.md'}", file=sys.stderr)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
