"""One optimisation step per model kind: the adversarial step (two optimisers, n_critic) and
the VAE step. The loop calls `step(real, labels)` and never looks inside.

The networks a step calls while training are named in its NETWORKS; the loop may replace them
with wrappers of the same parameters (DistributedDataParallel, torch.compile) through
`wrap_networks`, while previews and checkpoints keep using the plain modules.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latentstudio.models import Kind
from latentstudio.models.spectral import power_iteration
from latentstudio.objectives.adversarial import discriminator_loss, generator_loss
from latentstudio.objectives.kl import kl_normal
from latentstudio.objectives.penalties import clip_weights, gradient_penalty, r1_penalty
from latentstudio.precision import DTYPES, resolve_precision
from latentstudio.precision import autocast_dtype as autocast_dtype  # importable from here too
from latentstudio.train.ada import AdaController
from latentstudio.train.ada import augment as augment_ada
from latentstudio.train.augment import diffaug, parse_policy
from latentstudio.train.config import PAPER_DIFFAUG, TrainConfig
from latentstudio.train.ema import CALIBRATION_IMAGES, EMA, ramped_decay, standing_statistics

CALIBRATION_SEED = 7_777_777  # added to --seed: a stream of its own


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module inside torch.compile and DistributedDataParallel wrappers."""
    while True:
        if isinstance(net, nn.parallel.DistributedDataParallel):
            net = net.module
        elif "_orig_mod" in net._modules:  # torch.compile's OptimizedModule
            net = net._orig_mod
        else:
            return net


def _eager(net: nn.Module) -> nn.Module:
    """`net` without a torch.compile wrapper (double backward is not supported when compiled)."""
    return net._orig_mod if "_orig_mod" in net._modules else net


def _no_sync(net: nn.Module) -> contextlib.AbstractContextManager:
    """DDP's no_sync for a (possibly wrapped) DDP module: no gradient all-reduce in this pass."""
    inner = _eager(net)
    if isinstance(inner, nn.parallel.DistributedDataParallel):
        return inner.no_sync()
    return contextlib.nullcontext()


class _Method(nn.Module):
    """Calls one method of a module as its forward, so DDP and torch.compile see that method."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args: Any) -> Any:
        return getattr(self.module, self.method)(*args)


def noise_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of rank `rank`'s training noise; rank 0's is the single-process one.

    Ranks other than 0 do not save their noise state, so a resumed run reseeds them from `step`.
    """
    if rank == 0:
        return seed + 1
    return seed + 1 + rank * 1_000_003 + step * 7_919


def make_optimizer(kind: str, params: Iterator[nn.Parameter], lr: float,
                   betas: tuple[float, float], device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused into one kernel per step on CUDA and CPUs (no host sync, 2-3x faster on a CPU
    than the per-tensor loop), or RMSProp over all tensors at once."""
    fast = device.type in ("cuda", "cpu") or None
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=fast)
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fast)
    except RuntimeError:  # a PyTorch without a fused Adam for this device
        return torch.optim.Adam(params, lr=lr, betas=betas)


class Step:
    """Shared pieces: autocast, gradient scaling for fp16, the training noise generator.

    A kind's step subclasses this: `__call__(real, labels, step)` does one update and returns
    its losses, `image_network(calibration_images)` is the network previews and checkpoints use
    (an EMA copy with batch norm recomputes its statistics from that many images). The EMA copy
    (`ema.shadow`) is saved by the trainer as a network of its own, not in `state_dict`.
    """

    NETWORKS: tuple[str, ...] = ()  # attributes holding the networks called in training

    def __init__(self, cfg: TrainConfig, device: torch.device, total_steps: int) -> None:
        self.cfg = cfg
        self.device = device
        # The horizon of every schedule: the run's step count when it started, kept when a run
        # is extended (the trainer restores it from the checkpoint), so schedules never jump.
        self.schedule_steps = max(1, total_steps)
        self.precision = resolve_precision(cfg.precision, device, "train")  # "bf16", "fp16", "fp32"
        self.dtype = DTYPES[self.precision]
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(noise_seed(cfg.seed, 0))
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lrs: dict[str, float] = {}  # per optimiser, as configured (before any halving)
        self.ema: EMA | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=self.device, generator=self.gen)

    def networks(self) -> dict[str, nn.Module]:
        """The networks called in training, by attribute name (possibly wrapped)."""
        return {name: getattr(self, name) for name in self.NETWORKS}

    def set_networks(self, nets: dict[str, nn.Module]) -> None:
        for name, net in nets.items():
            setattr(self, name, net)

    def wrap_networks(self, wrap: Any) -> None:
        """Replace each training network by `wrap(network)` (same parameters, e.g. DDP, compile)."""
        self.set_networks({name: wrap(net) for name, net in self.networks().items()})

    def ema_decay(self, step: int, batch_size: int) -> float:
        """The EMA's decay at `step`, ramped up over the first images (--ema-rampup)."""
        return ramped_decay(self.ema.decay, self.cfg.ema_rampup, (step + 1) * batch_size, batch_size)

    def schedule_progress(self, step: int) -> float:
        """How far `step` is through the schedule horizon, from 0 to 1 and held at 1 after it."""
        return min(1.0, max(0, step) / self.schedule_steps)

    def reseed(self, rank: int, step: int) -> None:
        """Give rank `rank` its own training noise (different latents on every rank)."""
        self.gen.manual_seed(noise_seed(self.cfg.seed, rank, step))

    def _update(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        # Only this optimiser's parameters: in the generator update the discriminator's weight
        # gradients would be computed, then thrown away at its next zero_grad.
        params = [p for group in opt.param_groups for p in group["params"] if p.requires_grad]
        self.scaler.scale(loss).backward(inputs=params)
        self.scaler.step(opt)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        state = {f"opt_{k}": o.state_dict() for k, o in self.optimizers.items()}
        state["scaler"] = self.scaler.state_dict()
        state["gen"] = self.gen.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, o in self.optimizers.items():
            o.load_state_dict(state[f"opt_{k}"])
        self.scaler.load_state_dict(state["scaler"])
        self.gen.set_state(state["gen"])

    def set_lr_scale(self, factor: float) -> None:
        """Set every learning rate to `factor` times its configured value.

        Absolute rather than cumulative, so the result does not depend on which checkpoint
        (with which already-lowered rates) was restored before.
        """
        for k, o in self.optimizers.items():
            for group in o.param_groups:
                group["lr"] = self.base_lrs[k] * factor


class AdversarialStep(Step):
    """One discriminator (critic) update per batch; one generator update every n_critic batches."""

    NETWORKS = ("G", "D")

    def __init__(self, models: nn.ModuleDict, cfg: TrainConfig, device: torch.device,
                 total_steps: int) -> None:
        super().__init__(cfg, device, total_steps)
        self.G, self.D = models["generator"], models["discriminator"]
        self.base_lrs = {"g": cfg.lr, "d": cfg.lr_d or cfg.lr}
        self.optimizers = {
            k: make_optimizer(cfg.optimizer, net.parameters(), self.base_lrs[k], cfg.betas, device)
            for k, net in (("g", self.G), ("d", self.D))
        }
        self.ema = EMA(self.G, cfg.ema, self._standing_statistics) if cfg.ema else None
        self.ada = AdaController(cfg.ada_target, cfg.ada_speed) if cfg.augment == "ada" else None
        self.policy = parse_policy(cfg.diffaug_policy or PAPER_DIFFAUG) \
            if cfg.augment == "diffaug" else ()
        self.conditional = getattr(self.G, "num_classes", 0) > 0
        # A self-supervised discriminator (FastGAN's) also rebuilds real images from its features.
        self.reconstructs = getattr(unwrap(self.D), "reconstructs", False)
        self.recon_distance = _l1_distance
        if self.reconstructs and cfg.family_settings.get("recon_loss") == "lite0":
            from latentstudio.train.perceptual import Lite0Distance

            self.recon_distance = Lite0Distance().to(device)

    def _d_input(self, x: torch.Tensor, step: int) -> torch.Tensor:
        if self.ada is not None:
            x = augment_ada(x, self.ada.p, self.gen)
        elif self.policy:
            x = diffaug(x, self.gen, self.policy)
        if self.cfg.instance_noise > 0:  # Sønderby et al. 2016, annealed linearly to 0
            sigma = self.cfg.instance_noise * (1 - self.schedule_progress(step))
            x = x + sigma * torch.randn(x.shape, device=x.device, generator=self.gen, dtype=x.dtype)
        return x

    def _targets(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        cfg = self.cfg
        if cfg.loss != "bce" or (cfg.label_smoothing == 0 and cfg.label_noise == 0):
            return None, None
        real = torch.full((n,), 1.0 - cfg.label_smoothing, device=self.device)  # one-sided
        fake = torch.zeros(n, device=self.device)
        if cfg.label_noise > 0:
            flip = torch.rand(n, device=self.device, generator=self.gen) < cfg.label_noise
            real = torch.where(flip, torch.zeros_like(real), real)
            flip = torch.rand(n, device=self.device, generator=self.gen) < cfg.label_noise
            fake = torch.where(flip, torch.ones_like(fake), fake)
        return real, fake

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        n = real.shape[0]
        y = labels if self.conditional else None
        out: dict[str, torch.Tensor] = {}
        update_g = (step + 1) % cfg.n_critic == 0
        for net in (self.G, self.D):  # spectral norms' vectors: only here, before any forward
            power_iteration(unwrap(net))
        z = self.randn(n, cfg.latent_dim)
        # Keep G's graph only on the batches where G is updated (1 in n_critic).
        with self.autocast(), torch.set_grad_enabled(update_g):
            fake = self.G(z, y)
        with self.autocast():
            real_in = self._d_input(real, step)
            d_call = self.D
            if cfg.r1:  # double backward: not through torch.compile
                real_in = real_in.detach().requires_grad_(True)
                d_call = _eager(self.D)
            if self.reconstructs:
                d_real, recons, targets = d_call(real_in, y, reconstruct=True)
                recon = sum(self.recon_distance(r, t) for r, t in zip(recons, targets, strict=True))
                out["recon"] = recon.detach()
            else:
                d_real = d_call(real_in, y)
            d_fake = self.D(self._d_input(fake.detach(), step), y)
            real_t, fake_t = self._targets(n)
            loss_d = discriminator_loss(cfg.loss, d_real.float(), d_fake.float(), real_t, fake_t)
            if self.reconstructs:
                loss_d = loss_d + recon
            if cfg.r1:
                r1 = r1_penalty(real_in, d_real)
                out["r1"] = r1.detach()
                loss_d = loss_d + cfg.r1 / 2 * r1
            if cfg.gp_weight:
                gp = gradient_penalty(lambda x: _eager(self.D)(x, y), real, fake, self.gen)
                out["gp"] = gp.detach()
                loss_d = loss_d + cfg.gp_weight * gp
        self._update(loss_d, self.optimizers["d"])
        if cfg.clip:
            clip_weights(self.D, cfg.clip)
        if self.ada is not None:
            self.ada.observe(d_real)
            # On the training device: the loop stacks every logged value there.
            out.update(ada_p=torch.tensor(self.ada.p, device=self.device),
                       ada_r=torch.tensor(self.ada.r, device=self.device))
        out.update(loss_d=loss_d.detach(), d_real=d_real.detach().float().mean(),
                   d_fake=d_fake.detach().float().mean())
        if update_g:
            with _no_sync(self.D):  # D's gradients from this pass are never used
                with self.autocast():
                    loss_g = generator_loss(cfg.loss, self.D(self._d_input(fake, step), y).float())
                self._update(loss_g, self.optimizers["g"])
            if self.ema is not None:
                self.ema.update(unwrap(self.G), self.ema_decay(step, n))
            out["loss_g"] = loss_g.detach()
        return out

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.ada is not None:
            state["ada"] = self.ada.state_dict()  # a resume continues with the same p
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])

    def image_network(self, calibration_images: int = CALIBRATION_IMAGES) -> nn.Module:
        """The network used for previews and sampling (the EMA copy when there is one, with batch
        statistics of its own from `calibration_images` generated images)."""
        return self.ema.calibrated(calibration_images) if self.ema is not None else unwrap(self.G)

    def _standing_statistics(self, net: nn.Module, images: int = CALIBRATION_IMAGES) -> None:
        """Recompute `net`'s batch statistics on `images` images from fixed latents, in batches of
        the training batch size, leaving every random stream of training as it was (exact
        resume)."""
        cfg = self.cfg
        g = torch.Generator(device=self.device)
        g.manual_seed(cfg.seed + CALIBRATION_SEED)
        classes = getattr(net, "num_classes", 0)

        def forward(model: nn.Module) -> None:
            z = torch.randn(cfg.batch_size, cfg.latent_dim, device=self.device, generator=g)
            y = torch.randint(classes, (cfg.batch_size,), device=self.device, generator=g) \
                if classes else None
            with self.autocast():
                model(z, y)

        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # noise layers draw from the global stream
            standing_statistics(net, forward, math.ceil(images / cfg.batch_size))


class VAEStep(Step):
    """Negative ELBO: reconstruction (summed over pixels) + beta * KL, KL weight warmed up."""

    NETWORKS = ("E", "decode")

    def __init__(self, models: nn.ModuleDict, cfg: TrainConfig, device: torch.device,
                 total_steps: int) -> None:
        super().__init__(cfg, device, total_steps)
        self.E, self.Dec = models["encoder"], models["decoder"]
        self.decode = _Method(self.Dec, "logits")
        params = list(self.E.parameters()) + list(self.Dec.parameters())
        self.base_lrs = {"vae": cfg.lr}
        self.optimizers = {"vae": make_optimizer(cfg.optimizer, iter(params), cfg.lr, cfg.betas, device)}
        self.ema = EMA(self.Dec, cfg.ema) if cfg.ema else None

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        with self.autocast():
            mu, logvar = self.E(real, labels)
            mu, logvar = mu.float(), logvar.float()
            z = mu + (0.5 * logvar).exp() * self.randn(*mu.shape)
            logits = self.decode(z, labels).float()
        recon = reconstruction_loss(cfg.recon, logits, real)
        kl = kl_normal(mu, logvar).mean()
        loss = recon + self.kl_weight(step) * kl
        self._update(loss, self.optimizers["vae"])
        if self.ema is not None:
            self.ema.update(self.Dec, self.ema_decay(step, real.shape[0]))
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    def kl_weight(self, step: int) -> float:
        """beta, ramped up from 0 over the first kl_warmup steps and held afterwards.

        The warm-up's horizon is its own setting in steps, which a resume cannot change, so
        extending a run does not move it.
        """
        cfg = self.cfg
        return cfg.beta * (min(1.0, step / cfg.kl_warmup) if cfg.kl_warmup else 1.0)

    def image_network(self, calibration_images: int = CALIBRATION_IMAGES) -> nn.Module:
        """The decoder used for previews and sampling (the EMA copy when there is one; it has no
        batch statistics to recompute)."""
        return self.ema.shadow if self.ema is not None else self.Dec


def _l1_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(x.float(), y.float())


def reconstruction_loss(kind: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image reconstruction loss summed over pixels, averaged over the batch.

    `logits` are the decoder's pre-activations (images = tanh(logits / 2) = 2 sigmoid(logits) - 1);
    `target` is in [-1, 1].
    """
    n = target.shape[0]
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, (target + 1) / 2, reduction="sum") / n
    return F.mse_loss(torch.tanh(logits / 2), target, reduction="sum") / n


def step_class(kind: Kind) -> type[Step]:
    """The training step class a kind names ("module:Class")."""
    module, _, name = kind.step.partition(":")
    return getattr(importlib.import_module(module), name)
