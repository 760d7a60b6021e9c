"""lightweight-gan (lucidrains; PyPI `lightweight-gan`) as an outside baseline: its own networks
and its own training step, on any device, beside latentstudio's `fastgan`.

The package asserts a CUDA GPU when imported and imports torchvision, which only its data
loading and image saving use. `import_lightweight_gan` imports it anyway on a machine without
either (the check answered yes for the import alone; torchvision an empty module where it does
not import), so its networks run unchanged on a CPU. `LightweightGAN.step` is `Trainer.train`
of lightweight_gan 1.2.1 with its defaults (its command line's: latent 256, fmap_max 512,
attention at 32 px, a 1x1 discriminator output, batch 10 with gradients accumulated over 4,
Adam 2e-4 betas (0.5, 0.9), hinge loss, R1-style penalty every 4th step, cutout + translation
with the probability it sets from the dataset size, EMA from step 20,000); left out are its
NaN reload, logging, checkpoints and DDP. Data comes from our loader (images in [0, 1], as its
ToTensor gives them).

Step time and peak memory at equal resolution and batch, one process:

    python benchmarks/lwgan_baseline.py --resolution 64 128 256 --batch 8 [--device cuda]
    python benchmarks/lwgan_baseline.py --quick --out /tmp/lwgan     # seconds, for the tests

Install it without the dependencies it declares (its torchvision would pull another torch):
`pip install --no-deps lightweight-gan==1.2.1 kornia kornia-rs einops adabelief-pytorch tabulate
colorama` (what its networks import; its command line needs fire and retry too). `fewshot_quality.py
--models fastgan,lightweight-gan` trains it as a third column.
Results: benchmarks/results/lwgan_step_<device>.json and .md (--out chooses the folder).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

RESULTS = Path(__file__).parent / "results"

# lightweight_gan's command line defaults (cli.py, train_from_folder), which its users train with.
DEFAULTS: dict[str, Any] = {
    "latent_dim": 256, "fmap_max": 512, "attn_res_layers": [32], "disc_output_size": 1,
    "batch_size": 10, "gradient_accumulate_every": 4, "lr": 2e-4, "ttur_mult": 1.0,
    "aug_types": ["cutout", "translation"], "aug_prob": None, "gp_weight": 10, "antialias": False,
}
INSTALL = ("pip install --no-deps lightweight-gan==1.2.1 kornia kornia-rs einops adabelief-pytorch "
           "tabulate colorama")


def import_lightweight_gan() -> types.ModuleType:
    """lightweight_gan.lightweight_gan, importable without a GPU or torchvision."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or built for another torch (as beside the CPU wheel here)
        for name in ("torchvision", "torchvision.transforms", "torchvision.utils"):
            sys.modules.pop(name, None)
        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")
        stub.utils = types.ModuleType("torchvision.utils")
        sys.modules.update({"torchvision": stub, "torchvision.transforms": stub.transforms,
                            "torchvision.utils": stub.utils})
    available = torch.cuda.is_available
    torch.cuda.is_available = lambda: True  # its import-time assert; the networks need no GPU
    try:
        import lightweight_gan.lightweight_gan as lwg
    except ImportError as e:
        raise SystemExit(f"lightweight-gan does not import ({e}): {INSTALL}") from None
    finally:
        torch.cuda.is_available = available
    return lwg


def auto_aug_prob(n_images: int) -> float:
    """The augmentation probability lightweight-gan sets for a dataset of this size."""
    return min(0.5, (1e5 - n_images) * 3e-6) if n_images < 1e5 else 0.0


class LightweightGAN:
    """lightweight-gan's G, D, EMA generator and optimisers, trained by its own step."""

    def __init__(self, image_size: int, device: str | torch.device = "cpu", n_images: int = 0,
                 **settings: Any) -> None:
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown lightweight-gan settings: {', '.join(sorted(unknown))}")
        self.settings = {**DEFAULTS, **settings}
        s = self.settings
        self.lwg = lwg = import_lightweight_gan()
        # Trainer.init_GAN sets these module globals before building (no SyncBatchNorm: one GPU).
        lwg.norm_class = nn.BatchNorm2d
        lwg.Blur = lwg.Blur if s["antialias"] else nn.Identity
        self.device = torch.device(device)
        self.image_size = image_size
        net = {"image_size": image_size, "fmap_max": s["fmap_max"],
               "attn_res_layers": s["attn_res_layers"]}
        self.G = lwg.Generator(latent_dim=s["latent_dim"], **net)
        self.D = lwg.Discriminator(disc_output_size=s["disc_output_size"], **net)
        self.GE = lwg.Generator(latent_dim=s["latent_dim"], **net)
        lwg.set_requires_grad(self.GE, False)
        self.G_opt = torch.optim.Adam(self.G.parameters(), lr=s["lr"], betas=(0.5, 0.9))
        self.D_opt = torch.optim.Adam(self.D.parameters(), lr=s["lr"] * s["ttur_mult"],
                                      betas=(0.5, 0.9))
        for m in (self.G, self.D, self.GE):  # LightweightGAN._init_weights
            for layer in m.modules():
                if type(layer) in {nn.Conv2d, nn.Linear}:
                    nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in",
                                            nonlinearity="leaky_relu")
        self.GE.load_state_dict(self.G.state_dict())
        for m in (self.G, self.D, self.GE):
            m.to(self.device)
        self.D_aug = lwg.AugWrapper(self.D, image_size)
        self.ema_updater = lwg.EMA(0.995)
        self.aug_prob = s["aug_prob"] if s["aug_prob"] is not None else auto_aug_prob(n_images)
        self.steps = 0
        self.last_losses = (0.0, 0.0)

    def parameters(self) -> int:
        return sum(p.numel() for m in (self.G, self.D) for p in m.parameters())

    def step(self, next_batch: Callable[[], torch.Tensor]) -> None:
        """One training step (Trainer.train): D on `gradient_accumulate_every` batches of real
        images from next_batch() (float in [0, 1] on the device), then G."""
        s, lwg = self.settings, self.lwg
        batch, latent, accumulate = s["batch_size"], s["latent_dim"], s["gradient_accumulate_every"]
        aug = {"prob": self.aug_prob, "types": s["aug_types"]}
        self.G.train()
        self.D.train()
        apply_gp = self.steps % 4 == 0

        self.D_opt.zero_grad()
        total_disc = torch.zeros([], device=self.device)
        for _ in range(accumulate):
            latents = torch.randn(batch, latent).to(self.device)  # drawn on the CPU, as it does
            image_batch = next_batch()
            with torch.no_grad():
                generated = self.G(latents)
            if apply_gp:
                image_batch.requires_grad_()
            generated, (fake_out, fake_out_32, _) = self.D_aug(
                generated, detach=True, input_requires_grad=apply_gp, return_discr_input=True,
                **aug)
            real_out, real_out_32, aux_loss = self.D_aug(image_batch, calc_aux_loss=True, **aug)
            divergence = lwg.hinge_loss(real_out, fake_out)
            disc_loss = divergence + lwg.hinge_loss(real_out_32, fake_out_32) + aux_loss
            if apply_gp:
                real_grad = torch.autograd.grad(
                    outputs=[real_out, real_out_32], inputs=image_batch,
                    grad_outputs=[torch.ones_like(real_out), torch.ones_like(real_out_32)],
                    create_graph=True, retain_graph=True, only_inputs=True)[0]
                fake_grad = torch.autograd.grad(
                    outputs=[fake_out, fake_out_32], inputs=generated,
                    grad_outputs=[torch.ones_like(fake_out), torch.ones_like(fake_out_32)],
                    create_graph=True, retain_graph=True, only_inputs=True)[0]
                gradients = torch.cat((real_grad, fake_grad)).reshape(2 * batch, -1)
                gp = s["gp_weight"] * (gradients.norm(2, dim=1) ** 2).mean()
                if not torch.isnan(gp):
                    disc_loss = disc_loss + gp
            (disc_loss / accumulate).backward()
            total_disc += divergence.detach()
        aux_loss.item()  # its step reads these two values every step (a device sync on a GPU)
        d_loss = float(total_disc.item() / accumulate)
        self.D_opt.step()

        self.G_opt.zero_grad()
        total_gen = torch.zeros([], device=self.device)
        for _ in range(accumulate):
            latents = torch.randn(batch, latent).to(self.device)  # drawn on the CPU, as it does
            generated = self.G(latents)
            fake_out, fake_out_32, _ = self.D_aug(generated, **aug)
            loss = lwg.gen_hinge_loss(fake_out, None)
            gen_loss = loss + lwg.gen_hinge_loss(fake_out_32, None)
            (gen_loss / accumulate).backward()
            total_gen += loss.detach()
        g_loss = float(total_gen.item() / accumulate)
        self.G_opt.step()
        self.last_losses = (d_loss, g_loss)

        if self.steps % 10 == 0 and self.steps > 20000:
            self._update_ema()
        if self.steps <= 25000 and self.steps % 1000 == 2:
            self.GE.load_state_dict(self.G.state_dict())
        self.steps += 1

    def _update_ema(self) -> None:  # LightweightGAN.EMA
        update = self.ema_updater.update_average
        for current, average in zip(self.G.parameters(), self.GE.parameters(), strict=True):
            average.data = update(average.data, current.data)
        for current, average in zip(self.G.buffers(), self.GE.buffers(), strict=True):
            average.copy_(update(average, current))

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, ema: bool = False, batch: int = 100) -> torch.Tensor:
        """n images as uint8 (N, 3, H, W), from G in eval mode as its `evaluate` draws them
        (the `-ema` images with ema=True), clamped to [0, 1] as its save_image does."""
        net = self.GE if ema else self.G
        was_training = net.training
        net.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # its Noise layers draw from the global RNG
            torch.manual_seed(seed)
            z = torch.randn(n, self.settings["latent_dim"])
            out = [net(z[i:i + batch].to(self.device)).float().clamp(0, 1).mul(255).round()
                   .to(torch.uint8).cpu() for i in range(0, n, batch)]
        net.train(was_training)
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "GE": self.GE.state_dict(), "D": self.D.state_dict(),
                "steps": self.steps, "aug_prob": self.aug_prob, "settings": self.settings,
                "image_size": self.image_size}

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> LightweightGAN:
        state = torch.load(path, map_location=device, weights_only=True)
        model = cls(state["image_size"], device, **state["settings"])
        for name in ("G", "GE", "D"):
            getattr(model, name).load_state_dict(state[name])
        model.steps, model.aug_prob = state["steps"], state["aug_prob"]
        return model


def batches(images: torch.Tensor, batch: int, device: torch.device,
            seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless shuffled batches (the last short one of each pass dropped, as its DataLoader
    does) of uint8 images as float in [0, 1] on the device."""
    if len(images) < batch:
        raise SystemExit(f"lightweight-gan needs at least {batch} images (its batch size)")
    images = images.to(device)
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(images), generator=gen)
        for i in range(0, len(images) - batch + 1, batch):
            yield images[order[i:i + batch].to(device)].float() / 255


# ----- step time and peak memory against latentstudio's fastgan
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], device: torch.device, warmup: int,
               steps: int) -> list[float]:
    """Seconds of each of `steps` calls of step() after `warmup` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, int]]:
    """The peak bytes of tensors allocated inside the block, above what was allocated before it:
    the CUDA allocator's count on a GPU, LiveBytes (every tensor op's outputs) on a CPU."""
    from latentstudio.train.memory import LiveBytes

    out: dict[str, int] = {}
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        yield out
        sync(device)
        out["peak"] = torch.cuda.max_memory_allocated(device) - before
    else:
        with LiveBytes() as live:
            yield out
        out["peak"] = live.peak


def ours(resolution: int, batch: int, width: int, device: torch.device, precision: str
         ) -> tuple[Callable[[], None], int, str]:
    """One step of latentstudio's fastgan (its Trainer's updater) on random images, its
    parameter count and precision."""
    from latentstudio.models import get_family
    from latentstudio.train.config import TrainConfig, model_config_for, resolve_config
    from latentstudio.train.steps import step_class

    family = get_family("fastgan")
    cfg = resolve_config(TrainConfig(model="fastgan", resolution=resolution, width=width,
                                     batch_size=batch, device=str(device), precision=precision,
                                     augment="diffaug", ema=0.999), family)
    models = nn.ModuleDict(family.build(model_config_for(cfg, family, 3, 0))).to(device)
    updater = step_class(family.hooks)(models, cfg, device, 10**6)
    real = torch.rand(batch, 3, resolution, resolution, device=device) * 2 - 1
    count = iter(range(10**9))
    params = sum(p.numel() for p in models.parameters())
    return lambda: updater(real, None, next(count)), params, updater.precision


def theirs(resolution: int, batch: int, device: torch.device, fmap_max: int
           ) -> tuple[Callable[[], None], int]:
    """One step of lightweight-gan at its defaults, `batch` images, no accumulation."""
    model = LightweightGAN(resolution, device, n_images=500, batch_size=batch,
                           gradient_accumulate_every=1, fmap_max=fmap_max)
    real = torch.rand(batch, 3, resolution, resolution, device=device)
    return lambda: model.step(lambda: real.clone()), model.parameters()


def compare(resolution: int, batch: int, width: int, fmap_max: int, device: torch.device,
            warmup: int, steps: int, precision: str, fp32_too: bool) -> dict[str, Any]:
    """Median step time and peak memory of both, at one resolution and batch (ours also in
    fp32 with fp32_too, where its precision is another)."""
    torch.manual_seed(0)
    row: dict[str, Any] = {"resolution": resolution, "batch": batch}
    for name in ("latentstudio", "latentstudio_fp32", "lightweight_gan"):
        if name == "latentstudio_fp32":
            if not fp32_too or row["latentstudio"]["precision"] == "fp32":
                continue
            step, params, used = ours(resolution, batch, width, device, "fp32")
        elif name == "latentstudio":
            step, params, used = ours(resolution, batch, width, device, precision)
        else:
            (step, params), used = theirs(resolution, batch, device, fmap_max), "fp32"
        times = time_steps(step, device, warmup, steps)
        with peak_memory(device) as mem:
            step()
        row[name] = {"parameters": params, "precision": used, "seconds": statistics.median(times),
                     "runs": times, "peak_bytes": mem["peak"],
                     "images_per_s": batch / statistics.median(times)}
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(f"{resolution} px batch {batch}: {name} {row[name]['seconds'] * 1e3:.1f} ms/step, "
              f"peak {mem['peak'] / 2**20:.0f} MiB", file=sys.stderr)
    row["time_ratio"] = row["lightweight_gan"]["seconds"] / row["latentstudio"]["seconds"]
    row["memory_ratio"] = (row["lightweight_gan"]["peak_bytes"]
                           / max(1, row["latentstudio"]["peak_bytes"]))
    return row


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from latentstudio.precision import cpu_model

    return cpu_model()


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# One training step: latentstudio fastgan against lightweight-gan ({r['device']})",
             "", f"Measured {r['time']} with `{r['command']}` on {r['device']}, torch "
             f"{r['torch']}, {r['threads']} thread(s); load average {r['load'][0]:.1f} before, "
             f"{r['load'][1]:.1f} after. Median of {r['steps']} steps after {r['warmup']}; peak "
             "memory: tensors allocated during one step, above the models, optimiser state and "
             "batch already there (" + ("the CUDA allocator's peak" if r["device_type"] == "cuda"
                                        else "LiveBytes: every op's outputs, as the memory "
                                        "estimate counts them") + ").", "",
             f"latentstudio: `fastgan`, width {r['width']}, DiffAugment, EMA, its precision for "
             "the device. lightweight-gan 1.2.1: its networks and step at its command line's "
             f"defaults (fmap_max {r['fmap_max']}, latent 256, attention at 32 px, fp32; batch not "
             "accumulated here).", "",
             "| px | batch | latentstudio ms/step | lightweight-gan ms/step | time ratio | "
             "latentstudio peak MiB | lightweight-gan peak MiB | parameters (ours / theirs) |",
             "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in r["results"]:
        a, b = row["latentstudio"], row["lightweight_gan"]
        fp32 = (f"; fp32 {row['latentstudio_fp32']['seconds'] * 1e3:.1f}, peak "
                f"{row['latentstudio_fp32']['peak_bytes'] / 2**20:.0f} MiB"
                if "latentstudio_fp32" in row else "")
        lines.append(f"| {row['resolution']} | {row['batch']} | {a['seconds'] * 1e3:.1f} "
                     f"({a['precision']}{fp32}) | {b['seconds'] * 1e3:.1f} ({b['precision']}) | "
                     f"{row['time_ratio']:.2f} | {a['peak_bytes'] / 2**20:.0f} | "
                     f"{b['peak_bytes'] / 2**20:.0f} | {a['parameters'] / 1e6:.1f} M / "
                     f"{b['parameters'] / 1e6:.1f} M |")
    lines += ["", "time ratio: lightweight-gan's step time over ours (above 1: ours is faster).",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--width", type=int, default=64,
                   help="fastgan's width [default: 64: the official FastGAN's ngf, as on a GPU]")
    p.add_argument("--fmap-max", type=int, default=DEFAULTS["fmap_max"],
                   help=f"lightweight-gan's widest layer [default: {DEFAULTS['fmap_max']}]")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", help="latentstudio's [default: auto]")
    p.add_argument("--fp32-too", action="store_true",
                   help="time latentstudio in fp32 as well, where its precision is another")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", type=Path, help="folder for results [default: benchmarks/results]")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    args = p.parse_args(argv)
    if args.quick:
        args.resolution, args.batch, args.width, args.warmup, args.steps = [64], 2, 4, 1, 1
        args.fmap_max = 16
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results = [compare(res, args.batch, args.width, args.fmap_max, device, args.warmup,
                       args.steps, args.precision, args.fp32_too) for res in args.resolution]
    tag = "quick" if args.quick else device.type
    result = {"benchmark": "lwgan_step", "time": started, "device": device_name(device),
              "device_type": device.type, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "load": [load, os.getloadavg()[0]],
              "width": args.width, "fmap_max": args.fmap_max, "warmup": args.warmup,
              "steps": args.steps, "results": results,
              "command": " ".join([Path(sys.argv[0]).name,
                                   *(argv if argv is not None else sys.argv[1:])])}
    out = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / f"lwgan_step_{tag}.json").write_text(json.dumps(result, indent=1))
    (out / f"lwgan_step_{tag}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
