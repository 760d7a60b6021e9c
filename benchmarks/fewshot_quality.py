"""Few-shot image quality: `fastgan` against `dcgan` with its documented tricks, for the same
wall-clock budget on the same machine, on real images nobody here drew.

Data: the npm package `openmoji` (4,495 colour emoji as SVG, CC BY-SA 4.0; `npm pack openmoji`
fetches it), rendered once with `rsvg-convert` (Debian's librsvg2-bin) or `cairosvg` onto white
at the asked resolution into ~/.cache/latentstudio/openmoji/ (a seeded subset with `--subset N`).
Any folder of images works too (`--data folder:PATH`).

Every model trains in its own process at the same time as the others, each with the same number
of torch threads, until the same wall-clock deadline: whatever else runs on the machine slows
them alike. Then each run's EMA generator is sampled and compared with the training images:
FID/KID/precision/recall on EfficientNet-Lite0 features and on the domain network (a small CNN
trained on the real images themselves), and the memorisation score; 8x8 sample grids are saved.

    python benchmarks/fewshot_quality.py --openmoji openmoji-17.0.0.tgz --subset 500 --minutes 10
    python benchmarks/fewshot_quality.py --quick --out /tmp/fewshot     # seconds, for the tests
Results: benchmarks/results/fewshot_quality_<tag>.json, .md and the grids (--out chooses).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"
# Generated samples scored, against every training image (as StyleGAN2-ADA's fid50k_full). FID's
# bias shrinks like 1/n and differs by model (Chong & Forsyth 2020, "Effectively unbiased FID"):
# with 500 samples of two 20-minute runs on 500 emoji, FID (domain) ranked dcgan ahead (0.122
# against 0.141); with 2,000 and 5,000 fastgan was ahead (0.097 and 0.090 against 0.106 and
# 0.112), its more varied samples having paid the larger bias.
N_GENERATED = 5000
LWGAN = "lightweight-gan"

# What each contender trains with. dcgan: the README's recipe for a folder (DiffAugment, an EMA
# generator) at a width that trains at a useful rate on a CPU; fastgan: its family defaults
# with DiffAugment and the EMA, at the width `defaults by folder size` picks for a CPU.
CONTENDERS: dict[str, dict[str, Any]] = {
    "dcgan": {"model": "dcgan", "width": 32, "batch_size": 32, "augment": "diffaug", "ema": 0.999},
    # What a folder gets on a CPU at 64-128 px (train/auto.py): width 8 and the learning rates
    # that won the 6-minute screens of the README's "Few images, high resolution", compiled as a
    # run of the default 5,000 steps is (1.26x the steps in 10 minutes at 64 px once torch's
    # compile cache holds the networks; the first time, compiling takes 2-3 of the minutes).
    # dcgan's step is no faster compiled, so it stays eager.
    "fastgan": {"model": "fastgan", "width": 8, "batch_size": 16, "augment": "diffaug",
                "ema": 0.999, "ema_rampup": 0.2, "lr": 1e-3, "lr_d": 5e-4, "compile": True},
    # 256 px on a CPU: 0.6 of the time at 64 px, then grown to 256 (`--init-from` the 64 px
    # run; README, "Grow a run"). Width 8 and 0.6 drew people with faces on all emoji in 10
    # minutes on 2 threads (FID lite0 179.5 and 166.1, two seeds; 139.4 since the grown
    # generators start from the smaller run's average); width 16 and 0.5, blobs (222.7, on one
    # thread beside another run). By time, not steps as `train --grow-from`: a wall-clock race.
    "fastgan-grown": {"model": "fastgan", "width": 8, "batch_size": 8, "augment": "diffaug",
                      "ema": 0.999, "ema_rampup": 0.2, "lr": 1e-3, "lr_d": 5e-4,
                      "grow_from": 64, "grow_share": 0.6, "base_batch_size": 16},
    "fastgan-paper": {"model": "fastgan", "width": 16, "batch_size": 16, "augment": "diffaug",
                      "ema": 0.999},
    # What a folder gets on a GPU (train/auto.py): the official FastGAN's width and batch.
    "fastgan-gpu": {"model": "fastgan", "width": 64, "batch_size": 8, "augment": "diffaug",
                    "ema": 0.999},
    "fastgan-lite0": {"model": "fastgan", "width": 16, "batch_size": 16, "augment": "diffaug",
                      "ema": 0.999, "recon_loss": "lite0"},
    "dcgan-ada": {"model": "dcgan", "width": 32, "batch_size": 32, "augment": "ada", "ema": 0.999},
    "dcgan-plain": {"model": "dcgan", "width": 32, "batch_size": 32, "augment": "none",
                    "ema": 0.999},
    "fastgan-ada": {"model": "fastgan", "width": 16, "batch_size": 16, "augment": "ada",
                    "ema": 0.999},
    # lucidrains' lightweight-gan (lwgan_baseline.py): its networks and step at its command
    # line's defaults, unless changed (lightweight-gan:fmap_max=64). Not a latentstudio family:
    # trained and sampled by lwgan_baseline.LightweightGAN; its G scored (its EMA starts at
    # step 20,000).
    LWGAN: {"model": LWGAN},
}
# lightweight-gan's settings in --quick: small enough to take seconds.
LWGAN_QUICK = {"fmap_max": 16, "batch_size": 8, "gradient_accumulate_every": 1}
LWGAN_FILE = "lightweight_gan.pt"


# Keys of a contender that say how the benchmark trains it, not what (see train_worker).
GROWTH = ("grow_from", "grow_share", "base_batch_size")


# ----- data
def openmoji_svgs(source: Path, cache: Path) -> list[Path]:
    """The colour SVGs of an openmoji npm package (its .tgz or unpacked folder)."""
    if source.is_file():
        unpacked = cache / "package"
        if not (unpacked / "color" / "svg").is_dir():
            with tarfile.open(source) as tar:
                members = [m for m in tar.getmembers() if m.name.startswith("package/color/svg/")]
                tar.extractall(cache, members=members, filter="data")
        source = unpacked
    svg_dir = source / "color" / "svg" if (source / "color" / "svg").is_dir() else source
    svgs = sorted(svg_dir.glob("*.svg"))
    if not svgs:
        raise SystemExit(f"no SVG files in {svg_dir}: pass the openmoji .tgz from `npm pack openmoji`")
    return svgs


def _svg_renderer() -> Any:
    if shutil.which("rsvg-convert"):
        def render(svg: Path, png: Path, px: int) -> None:
            subprocess.run(["rsvg-convert", "-w", str(px), "-h", str(px), "-b", "white",
                            "-o", str(png), str(svg)], check=True)
        return render
    try:
        import cairosvg
    except ImportError:
        raise SystemExit("rendering SVG needs `rsvg-convert` (apt-get install librsvg2-bin) or "
                         "`pip install cairosvg`") from None

    def render_cairo(svg: Path, png: Path, px: int) -> None:
        cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=px, output_height=px,
                         background_color="white")
    return render_cairo


def render_openmoji(source: Path, resolution: int, subset: int | None, seed: int = 0) -> Path:
    """A folder of `subset` (None: all) OpenMoji emoji as RGB PNGs on white, rendered once."""
    from latentstudio.paths import cache_dir

    cache = cache_dir() / "openmoji"
    svgs = openmoji_svgs(source, cache)
    if subset:
        svgs = sorted(random.Random(seed).sample(svgs, min(subset, len(svgs))))
    out = cache / f"{resolution}px-{len(svgs)}-seed{seed}"
    todo = [s for s in svgs if not (out / f"{s.stem}.png").exists()]
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        render = _svg_renderer()
        print(f"rendering {len(todo)} emoji at {resolution} px into {out}", file=sys.stderr)

        def one(svg: Path) -> None:
            tmp = out / f".{svg.stem}.tmp.png"
            render(svg, tmp, resolution)
            tmp.replace(out / f"{svg.stem}.png")
        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            list(pool.map(one, todo))
    return out


def quick_folder(root: Path, count: int = 48, resolution: int = 64) -> Path:
    """A small folder of procedural shapes as PNGs (for --quick: no SVG renderer needed)."""
    from latentstudio.data.shapes import make_shapes
    from latentstudio.images import to_pil

    folder = root / "quick-data"
    folder.mkdir(parents=True, exist_ok=True)
    images = make_shapes(count, resolution, seed=1).images
    for i, image in enumerate(images):
        to_pil(image).save(folder / f"{i:03d}.png")
    return folder


# ----- one contender, in its own process
def lwgan() -> Any:
    """The lwgan_baseline module beside this file."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import lwgan_baseline
    finally:
        sys.path.pop(0)
    return lwgan_baseline


def train_lightweight(spec: dict[str, Any]) -> None:
    """Train lightweight-gan with its own step until the deadline; save it and the summary."""
    from latentstudio import atomic
    from latentstudio.data import load_dataset

    base = lwgan()
    cfg = spec["config"]
    out = Path(cfg["out"])
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(cfg["data"], resolution=cfg["resolution"], progress=False)
    if data.images.shape[1] != 3:
        raise SystemExit("lightweight-gan is benchmarked on colour images only")
    torch.manual_seed(cfg["seed"])
    model = base.LightweightGAN(cfg["resolution"], cfg["device"], n_images=len(data),
                                **{k: v for k, v in cfg.items() if k in base.DEFAULTS})
    source = base.batches(data.images, model.settings["batch_size"], model.device,
                          cfg["seed"])
    start = time.time()
    while True:  # at least one step, as the other contenders' runs
        model.step(lambda: next(source))
        if time.time() >= spec["deadline"]:
            break
    elapsed = time.time() - start
    atomic.save_torch(out / LWGAN_FILE, model.state_dict())
    per_step = model.settings["batch_size"] * model.settings["gradient_accumulate_every"]
    summary = {"steps": model.steps, "seconds": elapsed,
               "images_per_s": model.steps * per_step / elapsed,
               "precision": "fp32", "aug_prob": model.aug_prob, "data": cfg["data"],
               "resolution": cfg["resolution"],
               "cpu_seconds": resource.getrusage(resource.RUSAGE_SELF).ru_utime}
    (out / "bench_train.json").write_text(json.dumps(summary))


def train_worker(spec: dict[str, Any]) -> None:
    """Train one contender until its deadline (a wall-clock time), then save and exit. One with
    `grow_from` first trains at that size for `grow_share` of the time left (with
    `base_batch_size`), then grows that run (`--init-from`) to the asked size until the end."""
    torch.set_num_threads(spec["threads"])
    if spec["config"]["model"] == LWGAN:
        return train_lightweight(spec)
    import dataclasses

    from latentstudio.train.callbacks import Callback
    from latentstudio.train.config import TrainConfig
    from latentstudio.train.loop import train

    class Deadline(Callback):
        def __init__(self, at: float) -> None:
            self.at = at

        def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
            if time.time() >= self.at:
                trainer._stop_requested = True  # as Ctrl-C does: finish the step, save, stop

        def on_train_end(self, trainer: Any) -> None:
            self.trainer = trainer

    def run(settings: dict[str, Any], until: float) -> Any:
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        own = {k: v for k, v in settings.items() if k not in known}  # the family's settings
        cfg = TrainConfig(**{k: v for k, v in settings.items() if k in known}, family_settings=own)
        deadline = Deadline(until)
        train(cfg, callbacks=[deadline], progress=False)
        return deadline.trainer

    settings = dict(spec["config"])
    grow = {k: settings.pop(k) for k in GROWTH if k in settings}
    summary: dict[str, Any] = {}
    if grow:
        share = (spec["deadline"] - time.time()) * grow["grow_share"]
        base = {**settings, "resolution": grow["grow_from"], "out": settings["out"] + "-base",
                "batch_size": grow.get("base_batch_size", settings["batch_size"])}
        trained = run(base, time.time() + share)
        summary.update(base_steps=trained.step, base_seconds=trained.elapsed)
        settings["init_from"] = base["out"]
    trainer = run(settings, spec["deadline"])
    cfg = trainer.config
    summary.update(steps=trainer.step, epochs=trainer.epoch, seconds=trainer.elapsed,
                   images_per_s=trainer.step * cfg.batch_size / max(trainer.elapsed, 1e-9),
                   precision=trainer.updater.precision,
                   cpu_seconds=resource.getrusage(resource.RUSAGE_SELF).ru_utime)
    records = [json.loads(line) for line in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
    ada = [r for r in records if r.get("ada_p") is not None]
    if ada:  # p at the end, and r averaged over the last quarter of the run
        tail = ada[len(ada) * 3 // 4:]
        summary["ada_p"] = ada[-1]["ada_p"]
        summary["ada_r_last_quarter"] = sum(r["ada_r"] for r in tail) / len(tail)
    (Path(cfg.out) / "bench_train.json").write_text(json.dumps(summary))


def contender(name: str) -> dict[str, Any]:
    """The settings of NAME or NAME:KEY=VALUE:... (e.g. fastgan:width=8)."""
    base, *pairs = name.split(":")
    if base not in CONTENDERS:
        raise SystemExit(f"unknown model {base!r}: use {', '.join(CONTENDERS)}")
    return {**CONTENDERS[base], **dict(_setting(p) for p in pairs)}


def _setting(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)  # numbers, true/false, lists
    except json.JSONDecodeError:
        return key, value


def settings_for(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The --set (and --quick) changes that apply to NAME: lightweight-gan takes only its own."""
    if contender(name)["model"] != LWGAN:
        return {k: v for k, v in overrides.items() if k != LWGAN}
    return overrides.get(LWGAN, {})


def train_all(names: list[str], data: str, resolution: int, seconds: float, threads: int,
              out: Path, seed: int, overrides: dict[str, Any], device: str = "cpu"
              ) -> dict[str, dict]:
    """Start every contender at once with the same deadline; wait for all."""
    deadline = time.time() + seconds
    procs = {}
    for name in names:
        run_dir = out / "runs" / name.replace(":", "_")
        for folder in (run_dir, run_dir.with_name(run_dir.name + "-base")):
            if folder.exists():
                shutil.rmtree(folder)
        config = {**contender(name), **settings_for(name, overrides), "data": data,
                  "resolution": resolution,
                  "steps": 10**7, "seed": seed, "out": str(run_dir), "log_every": 10,
                  "preview_every": 10**6, "checkpoint_every": 10**6, "device": device}
        spec = {"config": config, "deadline": deadline, "threads": threads}
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        procs[name] = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)],
                                       env=env)
    for name, proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"training {name} failed (exit {proc.returncode})")
    return {name: json.loads((out / "runs" / name.replace(":", "_") / "bench_train.json").read_text())
            for name in names}


# ----- scoring
def score(run_dir: Path, extractor: str, n: int, device: str = "cpu",
          drawn: dict[Path, torch.Tensor] | None = None) -> dict[str, float]:
    """FID, KID, precision/recall and memorisation of n samples of the run in one feature space
    (lightweight-gan's samples are kept in `drawn` for the next: on a CPU they take minutes)."""
    from latentstudio.metrics.evaluate import EvalConfig, evaluate_images, evaluate_run

    cfg = EvalConfig(metrics=("fid", "kid", "pr", "mem"), n=n, extractor=extractor,
                     kid_subset_size=min(1000, max(n // 2, 2)), progress=False, device=device)
    if not (run_dir / LWGAN_FILE).is_file():
        return evaluate_run(run_dir, cfg).values
    from latentstudio.data import load_dataset

    trained = json.loads((run_dir / "bench_train.json").read_text())
    data = load_dataset(trained["data"], resolution=trained["resolution"], progress=False)
    drawn = {} if drawn is None else drawn
    if run_dir not in drawn:
        model = lwgan().LightweightGAN.load(run_dir / LWGAN_FILE, device)
        drawn[run_dir] = model.generate(n, seed=0)
    return evaluate_images(data, drawn[run_dir], cfg).values


def save_grid(run_dir: Path, path: Path) -> None:
    from latentstudio.images import make_grid, save_png
    from latentstudio.runs import load_run

    if (run_dir / LWGAN_FILE).is_file():
        model = lwgan().LightweightGAN.load(run_dir / LWGAN_FILE)
        side = 8 if model.image_size <= 128 else 4
        save_png(make_grid(model.generate(side * side, seed=0), nrow=side), path)
        return
    run = load_run(run_dir)
    side = 8 if run.model_config.resolution <= 128 else 4  # 4x4 of 256 px is already 1 MP
    save_png(make_grid(run.sample(side * side, seed=0), nrow=side), path)


def machine(device: str = "cpu") -> dict[str, Any]:
    from latentstudio.precision import cpu_flags, cpu_model

    found = {"cpu": cpu_model(), "cores": os.cpu_count(), "flags": sorted(cpu_flags() & {
        "avx512_bf16", "amx_bf16", "avx512f", "avx2"}), "torch": torch.__version__,
        "python": platform.python_version()}
    if device.startswith("cuda"):
        found["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return found


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--openmoji", type=Path, help="openmoji .tgz (npm pack openmoji) or its folder")
    p.add_argument("--data", help="a data spec instead (folder:PATH, fashion-mnist, ...)")
    p.add_argument("--subset", type=int, help="this many emoji, drawn with --seed (default: all)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    p.add_argument("--models", default="dcgan,fastgan",
                   help=f"comma list of {', '.join(CONTENDERS)}, each with optional :KEY=VALUE "
                        "changes (fastgan:width=8) [default: dcgan,fastgan]")
    p.add_argument("--threads", type=int, default=1, help="torch threads per model [default: 1]")
    p.add_argument("--device", default="cpu",
                   help="where every model trains and is scored (cpu, cuda) [default: cpu]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of every contender (e.g. --set width=8)")
    p.add_argument("--n", type=int, default=N_GENERATED,
                   help="generated samples to score against every training image "
                        f"[default: {N_GENERATED}]")
    p.add_argument("--extractors", default="lite0,domain",
                   help="feature spaces to score in [default: lite0,domain]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", help="name of the result files [default: from the data]")
    p.add_argument("--out", type=Path, help="folder for results [default: benchmarks/results]")
    p.add_argument("--work", type=Path, help="folder for the runs [default: OUT/fewshot_runs]")
    p.add_argument("--quick", action="store_true", help="seconds on tiny settings, for the tests")
    p.add_argument("--rescore", action="store_true",
                   help="score the runs already in --work again, without training (after a "
                        "change to the metrics)")
    p.add_argument("--render-to", type=Path, metavar="FOLDER",
                   help="only render the --openmoji images (--subset, --resolution) into FOLDER "
                        "(to carry them to another machine), then stop")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return train_worker(json.loads(args.worker))

    out = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or out / "fewshot_runs"
    overrides = dict(_setting(kv) for kv in args.set)
    if args.quick:
        args.minutes = args.minutes if args.minutes != 10.0 else 0.1
        data = f"folder:{quick_folder(work)}"
        overrides = {"width": 4, "batch_size": 8, "compile": False, LWGAN: LWGAN_QUICK,
                     **overrides}
        tag = args.tag or "quick"
    elif args.openmoji:
        rendered = render_openmoji(args.openmoji, args.resolution, args.subset, args.seed)
        if args.render_to:
            shutil.copytree(rendered, args.render_to, dirs_exist_ok=True)
            print(f"rendered {len(list(args.render_to.glob('*.png')))} emoji into {args.render_to}")
            return
        data = f"folder:{rendered}"
        tag = args.tag or f"openmoji{args.subset or 'all'}_{args.resolution}px"
    elif args.data:
        data, tag = args.data, args.tag or args.data.replace(":", "_").replace("/", "_")
    else:
        raise SystemExit("give --openmoji PACKAGE, --data SPEC or --quick")
    names = args.models.split(",")
    for name in names:
        contender(name)

    earlier = out / f"fewshot_quality_{tag}.json"
    if args.rescore:
        trained = {name: json.loads((work / "runs" / name.replace(":", "_") / "bench_train.json")
                                    .read_text()) for name in names}
        # When and under what load the runs trained stays theirs, where it was recorded.
        before = json.loads(earlier.read_text()) if earlier.is_file() else {}
        started = before.get("started", time.strftime("%Y-%m-%d %H:%M:%S"))
        load = before.get("load_average", {})
        load_before = load.get("before", os.getloadavg()[0])
        load_trained = load.get("after_training", os.getloadavg()[0])
    else:
        load_before = os.getloadavg()[0]
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"training {', '.join(names)} for {args.minutes:g} min each, at the same time, "
              f"{args.threads} thread(s) each", file=sys.stderr)
        trained = train_all(names, data, args.resolution, args.minutes * 60, args.threads, work,
                            args.seed, overrides, args.device)
        load_trained = os.getloadavg()[0]

    from latentstudio.data import load_dataset

    count = len(load_dataset(data, resolution=args.resolution, progress=False))
    n = args.n
    if args.quick:
        n = min(n, 32)
    rows: dict[str, dict] = {}
    for name in names:
        run_dir = work / "runs" / name.replace(":", "_")
        t0 = time.perf_counter()
        drawn: dict[Path, torch.Tensor] = {}
        scores = {ex: score(run_dir, ex, n, args.device, drawn)
                  for ex in args.extractors.split(",")}
        print(f"scored {name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        grid = out / f"fewshot_{tag}_{name.replace(':', '_').replace('=', '')}.png"
        save_grid(run_dir, grid)
        rows[name] = {"settings": {**contender(name), **settings_for(name, overrides)},
                      "train": trained[name],
                      "scores": scores, "grid": grid.name}
        print(f"{name}: {json.dumps(rows[name])}", file=sys.stderr)
    result = {"benchmark": "fewshot_quality", "started": started, "data": data,
              "images": count, "resolution": args.resolution, "minutes_per_model": args.minutes,
              "threads_per_model": args.threads, "n_scored": n, "machine": machine(args.device),
              "load_average": {"before": load_before, "after_training": load_trained,
                               "after": os.getloadavg()[0]},
              "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
              "models": rows}
    if args.rescore:
        result["rescored"] = time.strftime("%Y-%m-%d %H:%M:%S")
    earlier.write_text(json.dumps(result, indent=1))
    (out / f"fewshot_quality_{tag}.md").write_text(report(result))
    print(report(result))


def report(r: dict) -> str:
    m = r["machine"]
    lines = [f"# Few-shot quality: {r['data'].rsplit('/', 1)[-1]} ({r['images']} images, "
             f"{r['resolution']} px)", "",
             f"Measured {r['started']} with `{r['command']}`: every model trained at the same time "
             f"for {r['minutes_per_model']:g} min, {r['threads_per_model']} torch thread(s) each, "
             + (f"on an {m['gpu']} in a machine with " if "gpu" in m else "on ")
             + f"{m['cpu']} ({m['cores']} cores; {', '.join(m['flags'])}), torch {m['torch']}; "
             f"load average {r['load_average']['before']:.1f} before, "
             f"{r['load_average']['after_training']:.1f} at the end of training. "
             f"Scored on {r['n_scored']} samples of the EMA generator against the training images"
             + (f" (scored again {r['rescored']})." if r.get("rescored") else "."),
             "",
             "| model | settings | steps | img/s | CPU s | FID (lite0) | KID (lite0) | FID (domain) | "
             "KID (domain) | precision / recall (lite0) | memorisation (lite0 / domain / px) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    nan = {k: float("nan") for k in ("fid", "kid", "precision", "recall", "memorisation",
                                     "memorisation_px")}
    for name, row in r["models"].items():
        s, t = row["scores"], row["train"]
        lite, dom = s.get("lite0", nan), s.get("domain", nan)
        settings = ", ".join(f"{k} {v}" for k, v in row["settings"].items() if k != "model")
        if row["settings"]["model"] == LWGAN:  # lwgan_baseline.DEFAULTS, changed by these
            settings = "its defaults" + (f", {settings}" if settings else "")
        steps = f"{t['steps']}" + (f" (+{t['base_steps']} at {row['settings']['grow_from']} px)"
                                   if "base_steps" in t else "")
        lines.append(
            f"| {name} | {settings} | {steps} | {t['images_per_s']:.1f} | "
            f"{t.get('cpu_seconds', float('nan')):.0f} | {lite['fid']:.1f} | "
            f"{lite['kid']:.4f} | {dom['fid']:.2f} | {dom['kid']:.4f} | "
            f"{lite['precision']:.2f} / {lite['recall']:.2f} | {lite['memorisation']:.3f} / "
            f"{dom['memorisation']:.3f} / {lite['memorisation_px']:.3f} |")
    ada = {n: row["train"] for n, row in r["models"].items() if "ada_p" in row["train"]}
    if ada:
        lines += ["", "ADA: " + "; ".join(f"{n}: p {t['ada_p']:.3f} at the end, r "
                                          f"{t['ada_r_last_quarter']:.2f} over the last quarter"
                                          for n, t in ada.items())]
    if any(row["settings"]["model"] == LWGAN for row in r["models"].values()):
        lines += ["", "lightweight-gan: lucidrains' networks and training step (its version "
                  "1.2.1, benchmarks/lwgan_baseline.py), scored on its generator in eval mode as "
                  "it draws samples: its EMA copy starts at step 20,000. One step: batch_size x "
                  "gradient_accumulate_every images (img/s counts them all)."]
    lines += ["", "CPU s: user CPU seconds the training process got (set-up included); with "
              "other work on the machine it is less than threads x minutes. FID (domain): the "
              "network `latentstudio eval --extractor domain` trains on the training images "
              "(contrastive without labels, with SimCLR's colour distortion since 2026-12-01 "
              "11:40 UTC; before that without hue and greyscale, and before 2026-12-01 an "
              "autoencoder).",
              "", "Grids (seed 0; 8x8 up to 128 px, 4x4 above): "
              + ", ".join(f"`{row['grid']}`" for row in r["models"].values()),
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
