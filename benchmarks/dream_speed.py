"""DeepDream speed and memory: latentstudio's dream against a straightforward one, same run.

Both dream on the same image with the same settings (random-init GoogLeNet, inception4c mean,
4 octaves x 10 iterations, scale 1.4, step 0.02). The straightforward one is what a tutorial
writes: eager fp32, whole image, the full network run to its logits with a hook on the layer,
`loss.backward()` with the weights left trainable. Ours stops the network at the layer, freezes
the weights, updates buffers in place, cuts the image into tiles (--tile 512) and on CUDA uses
bf16 autocast and channels_last; on a CPU with native bf16 ours runs in bf16 too (`auto`), and
is then also timed in fp32 (LATENTSTUDIO_CPU_BF16=0) in the same run: the "ours fp32" column.

    python benchmarks/dream_speed.py              # 1024 and 4096 on a GPU, 1024 on a CPU
    python benchmarks/dream_speed.py --quick      # tiny sizes in-process, seconds (run by a test)

Each measurement runs in a fresh child process (peak memory is then per measurement: CUDA's
max_memory_allocated, or on CPU the child's peak RSS above its RSS before the timed run).
On a GPU, results go to benchmarks/results/dream_speed_<device>.{json,md}; on a CPU they are
only printed unless --save is given, and then the file names and headings say CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).parent / "results"


def test_image(size: int, seed: int = 0) -> torch.Tensor:
    """A smooth random picture (1, 3, size, size) in [-1, 1], the same for both dreams."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    fine = torch.rand(1, 3, 128, 128, generator=g) * 0.4 - 0.2
    x = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    x += F.interpolate(fine, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp_(-1, 1)


def build_model(device: torch.device) -> torch.nn.Module:
    from latentstudio.models.googlenet import GoogLeNet

    torch.manual_seed(0)
    return GoogLeNet().eval().to(device)


def straightforward_dream(model: torch.nn.Module, image: torch.Tensor, layer: str, octaves: int,
                          scale: float, iterations: int, step: float) -> torch.Tensor:
    """The baseline: eager fp32, whole image, full forward pass, weights left trainable."""
    captured = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda module, inputs, output: captured.__setitem__("a", output))
    try:
        bases = [image]
        for _ in range(octaves - 1):
            h, w = bases[-1].shape[2:]
            bases.append(F.interpolate(bases[-1], size=(round(h / scale), round(w / scale)),
                                       mode="bilinear", align_corners=False))
        detail = torch.zeros_like(bases[-1])
        for base in reversed(bases):
            detail = F.interpolate(detail, size=base.shape[2:], mode="bilinear",
                                   align_corners=False)
            img = base + detail
            for _ in range(iterations):
                img = img.detach().requires_grad_(True)
                model(img)
                loss = captured["a"].mean()
                loss.backward()
                g = img.grad
                img = (img + step * g / (g.abs().mean() + 1e-8)).clamp(-1, 1)
            detail = img.detach() - base
        return (bases[0] + detail).detach()
    finally:
        handle.remove()


def ours_dream(model: torch.nn.Module, image: torch.Tensor, layer: str, octaves: int,
               scale: float, iterations: int, step: float, tile: int) -> torch.Tensor:
    from latentstudio.dream.deepdream import DreamConfig, dream
    from latentstudio.dream.networks import LayerObjective, googlenet_net

    net = googlenet_net(model).to(image.device)
    objective = LayerObjective(net, layer, objective="mean")
    config = DreamConfig(octaves=octaves, octave_scale=scale, iterations=iterations, step=step,
                         tile=tile, blend=0.0)
    return dream(image, objective, config).image


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(impl: str, size: int, settings: dict, device: str) -> dict:
    """Time one dream (after a small warm-up) and its peak memory, in this process."""
    if impl == "ours_fp32":  # ours with the CPU's bf16 switched off
        from latentstudio.precision import CPU_BF16_ENV

        old = os.environ.get(CPU_BF16_ENV)
        os.environ[CPU_BF16_ENV] = "0"
        try:
            return {**measure("ours", size, settings, device), "impl": impl}
        finally:
            if old is None:
                del os.environ[CPU_BF16_ENV]
            else:
                os.environ[CPU_BF16_ENV] = old
    dev = torch.device(device)
    model = build_model(dev)
    image = test_image(size).to(dev)
    kwargs = {k: settings[k] for k in ("layer", "octaves", "scale", "iterations", "step")}
    run = (lambda x: straightforward_dream(model, x, **kwargs)) if impl == "straightforward" \
        else (lambda x: ours_dream(model, x, **kwargs, tile=settings["tile"]))
    run(test_image(min(size, 96)).to(dev))  # warm-up: kernels, allocator, autotuning
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    start, cpu_start = time.perf_counter(), time.process_time()
    out = run(image)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:  # ru_maxrss is in KiB on Linux
        peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)
    assert out.shape == image.shape and torch.isfinite(out).all()
    return {"impl": impl, "size": size, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "peak_mb": peak / 2**20}


def measure_in_child(impl: str, size: int, settings: dict, device: str) -> dict:
    job = json.dumps({"impl": impl, "size": size, "settings": settings, "device": device})
    proc = subprocess.run([sys.executable, __file__, "--child", job], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        return {"impl": impl, "size": size, "seconds": None, "peak_mb": None,
                "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [
        f"# DeepDream speed on {report['device']}",
        "",
        f"{report['date']}, torch {report['torch']}. Random-init GoogLeNet, layer {s['layer']} "
        f"(mean), {s['octaves']} octaves x {s['iterations']} iterations, octave scale "
        f"{s['scale']}, step {s['step']}; ours with --tile {s['tile']}"
        f"{', tiles batched 8 at a time' if report['cuda'] else ''}"
        f"{', bf16 autocast + channels_last' if report.get('ours_precision', 'fp32') == 'bf16' else ', fp32'}. "
        "Straightforward: "
        "eager fp32, whole image, full forward, weights trainable. Seconds: fastest of "
        f"{report['rows'][0]['repeats'] if report['rows'] else 1} interleaved run(s) after a small "
        "warm-up, " + ("in-process (--quick: memory figures meaningless)." if report["quick"]
                       else "each in a fresh process."),
        "",
        "| size | straightforward s | ours s | speedup | straightforward peak MB | ours peak MB |"
        + (" straightforward CPU s | ours CPU s |" if not report["cuda"] else ""),
        "|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if not report["cuda"] else ""),
    ]
    for row in report["rows"]:
        def fmt(v, spec):
            return "n/a" if v is None else format(v, spec)
        lines.append(f"| {row['size']}² | {fmt(row.get('straightforward_s'), '.2f')} | "
                     f"{fmt(row['ours_s'], '.2f')} | {fmt(row['speedup'], '.2f')}x | "
                     f"{fmt(row.get('straightforward_peak_mb'), '.0f')} | "
                     f"{fmt(row['ours_peak_mb'], '.0f')} |"
                     + ("" if report["cuda"] else f" {fmt(row.get('straightforward_cpu_s'), '.1f')} | "
                        f"{fmt(row.get('ours_cpu_s'), '.1f')} |"))
    if any("bf16_vs_fp32" in row for row in report["rows"]):
        lines += ["", "Ours in fp32 (this CPU's bf16 switched off) and in bf16, same run:", "",
                  "| size | ours fp32 s | ours bf16 s | bf16 speed-up |", "|---:|---:|---:|---:|"]
        for row in report["rows"]:
            if "bf16_vs_fp32" in row:
                lines.append(f"| {row['size']}² | {row['ours_fp32_s']:.2f} | {row['ours_s']:.2f} | "
                             f"{row['bf16_vs_fp32']:.2f}x |")
    for row in report["rows"]:
        for key in ("straightforward_error", "ours_fp32_error", "ours_error"):
            if row.get(key):
                lines.append(f"\n{row['size']}² {key.split('_')[0]} failed: {row[key]}")
    if not report["cuda"]:
        lines.append(f"\nCPU s is the process's CPU time (all threads); load average when the run "
                     f"started: {report.get('load', 'n/a')}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, 2 octaves x 2 iterations, in-process, nothing written")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="image sides (default 1024 4096 on a GPU, 1024 on a CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--layer", default="inception4c")
    p.add_argument("--iterations", type=int, default=10, help="per octave (default 10)")
    p.add_argument("--no-straightforward", dest="straightforward", action="store_false",
                   help="time ours only (fp32 and bf16), not the straightforward baseline")
    p.add_argument("--repeat", type=int, default=1,
                   help="measure each pair N times, interleaved; report the fastest (default 1)")
    p.add_argument("--save", action="store_true", help="on a CPU, also write the (CPU) results")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        job = json.loads(args.child)
        print(json.dumps(measure(job["impl"], job["size"], job["settings"], job["device"])))
        return 0

    cuda = args.device.startswith("cuda")
    if args.quick:
        sizes = args.sizes or [64, 128]
        settings = {"layer": args.layer, "octaves": 2, "scale": 1.4, "iterations": 2,
                    "step": 0.02, "tile": min(args.tile, 96)}
    else:
        sizes = args.sizes or ([1024, 4096] if cuda else [1024])
        settings = {"layer": args.layer, "octaves": 4, "scale": 1.4, "iterations": args.iterations,
                    "step": 0.02, "tile": args.tile}
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())  # other work on the machine skews CPU runs
    from latentstudio.precision import resolve_precision

    impls = ["straightforward"] if args.straightforward else []
    impls += ["ours"]
    if not cuda and resolve_precision("auto", "cpu", "dream") == "bf16":
        impls.insert(len(impls) - 1, "ours_fp32")
    rows = []
    for size in sizes:
        row: dict = {"size": size, "repeats": args.repeat}
        for _ in range(args.repeat):
            for impl in impls:
                result = measure(impl, size, settings, args.device) if args.quick \
                    else measure_in_child(impl, size, settings, args.device)
                print(f"{size}² {impl}: {result}", file=sys.stderr)
                if "error" in result:
                    row[f"{impl}_error"] = result["error"]
                    row.setdefault(f"{impl}_s", None)
                    row.setdefault(f"{impl}_peak_mb", None)
                    continue
                best = row.get(f"{impl}_s")
                if best is None or result["seconds"] < best:
                    row[f"{impl}_s"], row[f"{impl}_cpu_s"] = result["seconds"], result["cpu_seconds"]
                row[f"{impl}_peak_mb"] = max(row.get(f"{impl}_peak_mb") or 0, result["peak_mb"])
        a, b = row.get("straightforward_s"), row["ours_s"]
        row["speedup"] = a / b if a and b else None
        if row.get("ours_fp32_s") and b:
            row["bf16_vs_fp32"] = row["ours_fp32_s"] / b
        rows.append(row)

    report = {"device": device_label(args.device), "cuda": cuda, "quick": args.quick,
              "ours_precision": "bf16" if "ours_fp32" in impls else ("bf16" if cuda else "fp32"),
              "load": load,
              "torch": torch.__version__, "settings": settings, "rows": rows,
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    text = markdown(report)
    print(text)
    if args.quick or not (cuda or args.save):
        return 0
    name = re.sub(r"[^A-Za-z0-9]+", "-", report["device"] if cuda else
                  f"cpu-{torch.get_num_threads()}threads").strip("-").lower()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"dream_speed_{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"dream_speed_{name}.md").write_text(text)
    print(f"wrote {RESULTS / f'dream_speed_{name}.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
