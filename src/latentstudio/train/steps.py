"""One optimisation step per family kind: the adversarial step (two optimisers, n_critic) and
the VAE step. The loop calls `step(real, labels)` and never looks inside."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latentstudio.objectives.adversarial import discriminator_loss, generator_loss
from latentstudio.objectives.kl import kl_normal
from latentstudio.objectives.penalties import clip_weights, gradient_penalty
from latentstudio.train.augment import AUGMENTS
from latentstudio.train.config import TrainConfig
from latentstudio.train.ema import EMA


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (None: plain fp32)."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "auto" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def make_optimizer(kind: str, params: Iterator[nn.Parameter], lr: float,
                   betas: tuple[float, float], device: torch.device) -> torch.optim.Optimizer:
    """Adam (fused on CUDA) or RMSProp."""
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=device.type == "cuda" or None)


class _Step:
    """Shared pieces: autocast, gradient scaling for fp16, the training noise generator."""

    def __init__(self, cfg: TrainConfig, device: torch.device, total_steps: int) -> None:
        self.cfg = cfg
        self.device = device
        self.total_steps = max(1, total_steps)
        self.dtype = autocast_dtype(cfg.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(cfg.seed + 1)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lrs: dict[str, float] = {}  # per optimiser, as configured (before any halving)
        self.ema: EMA | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=self.device, generator=self.gen)

    def _update(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        state = {f"opt_{k}": o.state_dict() for k, o in self.optimizers.items()}
        state["scaler"] = self.scaler.state_dict()
        state["gen"] = self.gen.get_state()
        if self.ema is not None:
            state["ema"] = self.ema.shadow.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, o in self.optimizers.items():
            o.load_state_dict(state[f"opt_{k}"])
        self.scaler.load_state_dict(state["scaler"])
        self.gen.set_state(state["gen"])
        if self.ema is not None:
            self.ema.shadow.load_state_dict(state["ema"])

    def set_lr_scale(self, factor: float) -> None:
        """Set every learning rate to `factor` times its configured value.

        Absolute rather than cumulative, so the result does not depend on which checkpoint
        (with which already-lowered rates) was restored before.
        """
        for k, o in self.optimizers.items():
            for group in o.param_groups:
                group["lr"] = self.base_lrs[k] * factor


class AdversarialStep(_Step):
    """One discriminator (critic) update per batch; one generator update every n_critic batches."""

    def __init__(self, models: nn.ModuleDict, cfg: TrainConfig, device: torch.device,
                 total_steps: int) -> None:
        super().__init__(cfg, device, total_steps)
        self.G, self.D = models["generator"], models["discriminator"]
        self.base_lrs = {"g": cfg.lr, "d": cfg.lr_d or cfg.lr}
        self.optimizers = {
            k: make_optimizer(cfg.optimizer, net.parameters(), self.base_lrs[k], cfg.betas, device)
            for k, net in (("g", self.G), ("d", self.D))
        }
        self.ema = EMA(self.G, cfg.ema) if cfg.ema else None
        self.augment = AUGMENTS[cfg.augment]
        self.conditional = getattr(self.G, "num_classes", 0) > 0

    def _d_input(self, x: torch.Tensor, step: int) -> torch.Tensor:
        x = self.augment(x, self.gen)
        if self.cfg.instance_noise > 0:  # Sønderby et al. 2016, annealed linearly to 0
            sigma = self.cfg.instance_noise * max(0.0, 1 - step / self.total_steps)
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
        z = self.randn(n, cfg.latent_dim)
        # Keep G's graph only on the batches where G is updated (1 in n_critic).
        with self.autocast(), torch.set_grad_enabled(update_g):
            fake = self.G(z, y)
        with self.autocast():
            d_real = self.D(self._d_input(real, step), y)
            d_fake = self.D(self._d_input(fake.detach(), step), y)
            real_t, fake_t = self._targets(n)
            loss_d = discriminator_loss(cfg.loss, d_real.float(), d_fake.float(), real_t, fake_t)
            if cfg.gp_weight:
                gp = gradient_penalty(lambda x: self.D(x, y), real, fake, self.gen)
                out["gp"] = gp.detach()
                loss_d = loss_d + cfg.gp_weight * gp
        self._update(loss_d, self.optimizers["d"])
        if cfg.clip:
            clip_weights(self.D, cfg.clip)
        out.update(loss_d=loss_d.detach(), d_real=d_real.detach().float().mean(),
                   d_fake=d_fake.detach().float().mean())
        if update_g:
            with self.autocast():
                loss_g = generator_loss(cfg.loss, self.D(self._d_input(fake, step), y).float())
            self._update(loss_g, self.optimizers["g"])
            if self.ema is not None:
                self.ema.update(self.G)
            out["loss_g"] = loss_g.detach()
        return out

    def sampler(self) -> nn.Module:
        """The network used for previews and sampling (the EMA copy when there is one)."""
        return self.ema.shadow if self.ema is not None else self.G


class VAEStep(_Step):
    """Negative ELBO: reconstruction (summed over pixels) + beta * KL, KL weight warmed up."""

    def __init__(self, models: nn.ModuleDict, cfg: TrainConfig, device: torch.device,
                 total_steps: int) -> None:
        super().__init__(cfg, device, total_steps)
        self.E, self.Dec = models["encoder"], models["decoder"]
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
            logits = self.Dec.logits(z, labels).float()
        recon = reconstruction_loss(cfg.recon, logits, real)
        kl = kl_normal(mu, logvar).mean()
        weight = cfg.beta * (min(1.0, step / cfg.kl_warmup) if cfg.kl_warmup else 1.0)
        loss = recon + weight * kl
        self._update(loss, self.optimizers["vae"])
        if self.ema is not None:
            self.ema.update(self.Dec)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    def sampler(self) -> nn.Module:
        return self.ema.shadow if self.ema is not None else self.Dec


def reconstruction_loss(kind: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image reconstruction loss summed over pixels, averaged over the batch.

    `logits` are the decoder's pre-activations (images = tanh(logits / 2) = 2 sigmoid(logits) - 1);
    `target` is in [-1, 1].
    """
    n = target.shape[0]
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, (target + 1) / 2, reduction="sum") / n
    return F.mse_loss(torch.tanh(logits / 2), target, reduction="sum") / n


STEPS = {"gan": AdversarialStep, "vae": VAEStep}
