"""Contact sheet of the model zoo: every family trained for the same fixed budget, one grid each.

Each family trains with its own defaults (optimiser, loss, n_critic, clipping or penalty) for the
same number of steps on the same data, then its last preview grid goes on one labelled sheet:
GANs show samples, the conditional GAN one row per class, VAEs rows of real images,
reconstructions and prior samples.

    python benchmarks/zoo_sheet.py                           # shapes at 64 px, 3000 steps each (GPU)
    python benchmarks/zoo_sheet.py --data mnist --resolution 28
    python benchmarks/zoo_sheet.py --quick --out /tmp/sheet  # every family a few steps, CPU, seconds

Writes OUT/zoo_sheet.png, OUT/zoo_sheet.json (the command, device, settings and per family its
steps, seconds, images/s and last losses) and OUT/zoo_sheet.md; the run folders stay in OUT/runs/.
OUT defaults to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from latentstudio.devices import resolve_device
from latentstudio.models import FAMILIES, get_family
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

RESULTS = Path(__file__).parent / "results"
QUICK = dict(data="shapes:48", resolution=32, width=8, latent_dim=8, batch_size=16, steps=3,
             preview_count=8)


def family_names(asked: str | None) -> list[str]:
    get_family("dcgan")  # imports the family modules
    names = sorted(FAMILIES, key=lambda n: (FAMILIES[n].kind, n))
    if not asked:
        return names
    chosen = [n.strip() for n in asked.split(",") if n.strip()]
    for n in chosen:
        get_family(n)  # a UserError naming the valid families
    return chosen


def resolution_for(name: str, asked: int) -> int:
    """The asked size, or the nearest one the family makes (fastgan starts at 64 px)."""
    sizes = FAMILIES[name].resolutions
    if not sizes or asked in sizes:
        return asked
    return min(sizes, key=lambda size: (abs(size - asked), size))


def train_family(name: str, settings: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train one family (at the nearest size it makes); return its run folder, time and last
    logged values."""
    settings = {**settings, "resolution": resolution_for(name, settings["resolution"])}
    run_dir = out / "runs" / name
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    cfg = TrainConfig(model=name, out=str(run_dir), preview_every=10**6, log_every=50,
                      **settings)
    t0 = time.perf_counter()
    train(cfg, progress=False)
    seconds = time.perf_counter() - t0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = {k: v for r in records if "event" not in r for k, v in r.items()
            if k.startswith("loss") or k in ("recon", "kl", "gp")}
    speeds = [r["images_per_s"] for r in records if "images_per_s" in r]
    grid = sorted((run_dir / "samples").glob("epoch_*.png"))[-1]
    resolved = json.loads((run_dir / "config.json").read_text())["config"]
    return {"family": name, "kind": FAMILIES[name].kind, "run": str(run_dir), "grid": str(grid),
            "resolution": settings["resolution"],
            "steps": cfg.steps, "seconds": round(seconds, 1),
            "images_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None,
            "last": {k: round(v, 4) for k, v in last.items()},
            "settings": {k: resolved[k] for k in ("width", "lr", "optimizer", "betas", "loss",
                                                   "n_critic", "clip", "gp_weight")}}


def contact_sheet(results: list[dict[str, Any]], tile: int = 320, columns: int = 4) -> Image.Image:
    """The families' grids side by side, each scaled to `tile` px wide under its name."""
    label_h = 36
    tiles = []
    for r in results:
        with Image.open(r["grid"]) as im:
            grid = im.convert("RGB")
        h = round(grid.height * tile / grid.width)
        grid = grid.resize((tile, h), Image.NEAREST)
        card = Image.new("RGB", (tile, h + label_h), "white")
        card.paste(grid, (0, label_h))
        draw = ImageDraw.Draw(card)
        note = {"vae": "rows: real / reconstruction / prior sample"}.get(r["kind"], "")
        if FAMILIES[r["family"]].conditional:
            note = "one row per class"
        draw.text((4, 2), f"{r['family']}  ({r['steps']} steps, {r['seconds']:.0f} s)", fill="black")
        draw.text((4, 18), note, fill=(90, 90, 90))
        tiles.append(card)
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    width = min(columns, len(tiles)) * (tile + 8) + 8
    height = sum(max(t.height for t in row) + 8 for row in rows) + 8
    sheet = Image.new("RGB", (width, height), (235, 235, 235))
    y = 8
    for row in rows:
        x = 8
        for t in row:
            sheet.paste(t, (x, y))
            x += tile + 8
        y += max(t.height for t in row) + 8
    return sheet


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="shapes", help="data spec [default: shapes]")
    p.add_argument("--resolution", type=int, default=64, help="pixels [default: 64]")
    p.add_argument("--steps", type=int, default=3000, help="steps per family [default: 3000]")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=None, help="network width [default: each family's]")
    p.add_argument("--families", help="comma-separated families [default: all]")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS, help="output folder [default: benchmarks/results]")
    p.add_argument("--quick", action="store_true", help="tiny settings on the CPU, for a test")
    args = p.parse_args(argv)

    settings: dict[str, Any] = dict(data=args.data, resolution=args.resolution, steps=args.steps,
                                    batch_size=args.batch_size, width=args.width,
                                    preview_count=64, device=args.device, seed=args.seed)
    if args.quick:
        settings.update(QUICK, device="cpu", precision="fp32")
    device = resolve_device(settings["device"])
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in family_names(args.families):
        r = train_family(name, settings, args.out)
        print(f"{name:10s} {r['steps']} steps in {r['seconds']:7.1f} s  last {r['last']}", flush=True)
        results.append(r)

    sheet = contact_sheet(results)
    sheet.save(args.out / "zoo_sheet.png")
    command = "python benchmarks/zoo_sheet.py " + " ".join(shlex.quote(a) for a in
                                                          (argv if argv is not None else sys.argv[1:]))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    report = {"command": command.strip(), "commit": _git_commit(), "device": device_name,
              "torch": torch.__version__, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "settings": settings, "families": results}
    (args.out / "zoo_sheet.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Model zoo contact sheet\n", f"`{report['command']}` on {device_name} "
             f"(torch {torch.__version__}, commit {report['commit']})\n",
             "![contact sheet](zoo_sheet.png)\n",
             "| family | steps | seconds | images/s | last losses |", "|---|---|---|---|---|"]
    for r in results:
        losses = ", ".join(f"{k} {v:g}" for k, v in r["last"].items())
        lines.append(f"| {r['family']} | {r['steps']} | {r['seconds']} | {r['images_per_s']} | {losses} |")
    (args.out / "zoo_sheet.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'zoo_sheet.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
