"""The training health monitor: says in one line when samples lose their variety (mode collapse),
when the discriminator has won, and when an EMA generator is still warming up.

`HealthMonitor` is a callback that runs before the one writing metrics.jsonl and adds to each
log record; nothing runs per step. The discriminator and EMA checks use the logged values
(already read from the device) and the step count; the variety of the samples is measured at
the first log, then at most every DIVERSITY_SECONDS of training time and at the end, with the
preview network on fixed latents, as the spread of its samples over the spread of a fixed batch
of training images. The state goes into metrics.jsonl as `health` (with the numbers it used),
and a line is printed when it changes.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from latentstudio.train.callbacks import Callback
from latentstudio.train.ema import half_life_images, ramped_decay

if TYPE_CHECKING:
    from latentstudio.train.loop import Trainer

STATES = ("ok", "ema_warming", "d_won", "collapse")  # later ones win when several hold
HEALTH_BATCH = 64  # samples and real images whose spread is compared
HEALTH_SEED_OFFSET = 54321  # own latents and images, apart from training noise and previews
FEATURE_SIZE = 16  # images are averaged down to this many pixels a side: cheap, noise-blind
DIVERSITY_SECONDS = 30.0  # measure the spread at most this often (and at the first log, and the end)
# Spread of samples / spread of real images. A new DCGAN's samples are all alike (measured on
# shapes at 32 px, width 16: ratio 0.01 at step 25, 0.07 at step 50, 0.27 at step 200, 0.5 at
# step 600; 0.04 from step ~500 in a run on 64 images whose samples were one noisy picture), so
# a low ratio means collapse only once the samples had variety (PEAK_RATIO) or after many steps.
# FastGAN at --lr 1e-3 (its CPU setting for a folder) draws one picture for longer: 0.01-0.02 at
# step 200 on 500 emoji at 64 px, then varied from step 270-420 in three runs; DCGAN at width 32
# on the same emoji also read 0.00 at step 200 and was varied by step 260-310.
COLLAPSE_RATIO = 0.15
PEAK_RATIO = 0.3
COLLAPSE_AFTER_STEPS = 1000
IDENTICAL_RATIO = 0.05  # all but identical samples...
IDENTICAL_AFTER_STEPS = 500  # ...are collapse sooner
RECOVERY = 1.5  # a collapsed run is well again once its ratio is this x over the limits (no flapping)
D_WON_STEPS = 100  # the discriminator must have won over this many steps of logs in a row...
D_WON_CLEAR_STEPS = 50  # ...and a run that it won is well again once it has not for this many
D_WON_BCE_GAP = 10.0  # mean logits D(real) - D(fake); a healthy DCGAN on shapes reached 8.4
# Hinge: mean D(real) >= 1 and D(fake) <= -1 (both hinge terms ~0) with a gap of 4 or more. A
# gap alone grows in healthy runs too: FastGAN with a folder's settings on 500 emoji at 64 px
# passed +-1 at step ~3,000 while its FID kept falling to step 6,500 (gap 3.65 at step 5,000,
# 4.6 at 6,500 in 100-step means); without augmentation on 100 emoji the gap held 4 from step
# ~900 (it passed +-1 at step ~270), and its previews were textured boxes by step 1,000.
D_WON_HINGE = 1.0
D_WON_HINGE_GAP = 4.0
D_WON_ADA_R, D_WON_ADA_P = 0.9, 0.9  # ADA: sure of reals even with p near its maximum of 1
EMA_WARMING_FRACTION = 0.25  # the EMA's half-life is this large a part of the images seen


# ----- detectors (pure functions on numbers and images)
def features(images: torch.Tensor) -> torch.Tensor:
    """Images averaged down to at most FEATURE_SIZE pixels a side."""
    x = images.float()
    if x.shape[-1] > FEATURE_SIZE or x.shape[-2] > FEATURE_SIZE:
        x = F.adaptive_avg_pool2d(x, FEATURE_SIZE)
    return x


def spread(images: torch.Tensor) -> float:
    """Mean distance between the images of a batch (RMS per pixel, after averaging them down to
    FEATURE_SIZE pixels a side); 0 when they are all the same."""
    x = features(images).flatten(1)
    n = x.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(x[None], x[None])[0] / math.sqrt(x.shape[1])
    return float(d.sum() / (n * (n - 1)))


def collapsed(ratio: float, step: int, peak: float = 0.0) -> bool:
    """Whether samples whose spread is `ratio` x that of real images at `step` have collapsed,
    given the highest ratio measured before in this run (`peak`)."""
    if ratio < IDENTICAL_RATIO and step >= IDENTICAL_AFTER_STEPS:
        return True
    return ratio < COLLAPSE_RATIO and (peak >= PEAK_RATIO or step >= COLLAPSE_AFTER_STEPS)


def discriminator_separates(loss: str | None, values: dict[str, float]) -> bool:
    """Whether one log window's values show a discriminator that tells real from generated images
    apart completely (WGAN critics are unbounded: never)."""
    if "ada_r" in values and "ada_p" in values:
        return values["ada_r"] >= D_WON_ADA_R and values["ada_p"] >= D_WON_ADA_P
    real, fake = values.get("d_real"), values.get("d_fake")
    if real is None or fake is None:
        return False
    if loss == "bce":
        return real - fake >= D_WON_BCE_GAP
    if loss == "hinge":
        return real >= D_WON_HINGE and fake <= -D_WON_HINGE and real - fake >= D_WON_HINGE_GAP
    return False


def ema_horizon(decay: float, rampup: float, step: int, batch_size: int) -> float:
    """The EMA's half-life at `step` as a fraction of the images seen so far (1 or more: the
    average is still mostly the first, untrained weights)."""
    seen = max(step, 1) * batch_size
    d = ramped_decay(decay, rampup, seen, batch_size)
    return half_life_images(d, batch_size) / seen


@dataclass
class Verdict:
    """The health state, the line that explains it, and the numbers it used."""

    state: str
    message: str
    numbers: dict[str, float]


class HealthMonitor(Callback):
    """Keeps the run's health state from one log to the next and adds it to the log records
    (rank 0 only; the trainer puts it before the callback that writes them)."""

    def __init__(self, *, stream: Any = None) -> None:
        self.state = "ok"  # a run starts healthy: nothing is said until that changes
        self.stream = stream
        self.adversarial, self.is_vae = False, False
        self.ratio: float | None = None
        self.peak = 0.0  # the highest ratio measured so far (since this process started)
        self.real_spread = 0.0
        self._measured_at: float | None = None
        self._won_since: int | None = None
        self._clear_since: int | None = None  # since when a won discriminator no longer separates

    def on_train_start(self, trainer: Trainer) -> None:
        cfg = trainer.config
        self.adversarial = "discriminator" in trainer.models
        self.is_vae = trainer.kind.can_encode
        g = torch.Generator().manual_seed(cfg.seed + HEALTH_SEED_OFFSET)
        self.z = trainer.kind.latents(HEALTH_BATCH, cfg.latent_dim, g)
        classes = trainer.model_config.num_classes
        self.labels = torch.arange(HEALTH_BATCH) % classes if classes else None
        self.chunk = max(1, min(HEALTH_BATCH, cfg.batch_size))  # a batch the device holds
        idx = torch.randperm(len(trainer.data), generator=g)[:HEALTH_BATCH].tolist()
        self.real_spread = spread(torch.cat([
            features(trainer._real_images(idx[i:i + self.chunk]))
            for i in range(0, len(idx), self.chunk)]))

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Add the health fields to the loop's loss records (not to events or evaluations), unless
        a value is not finite (the divergence guard's business)."""
        if "images_per_s" not in record:
            return
        values = {k: v for k, v in record.items() if isinstance(v, (int, float))}
        if not all(math.isfinite(v) for v in values.values()):
            return
        final = trainer.step >= trainer.total_steps or trainer._stop_requested  # Ctrl-C
        record.update(self.check(trainer, values, final=final))

    def check(self, trainer: Trainer, values: dict[str, float], final: bool = False) -> dict[str, Any]:
        """The fields to add to this log record; prints a line when the state changes."""
        numbers: dict[str, float] = {}
        if final or self._measured_at is None or \
                trainer.elapsed - self._measured_at >= DIVERSITY_SECONDS:
            self.ratio = self._measure(trainer)
            self._measured_at = trainer.elapsed
            if self.ratio is not None:
                self.peak = max(self.peak, self.ratio)
                numbers["diversity"] = round(self.ratio, 4)
        verdict = self.verdict(trainer, values)
        fields: dict[str, Any] = {"health": verdict.state, **numbers, **verdict.numbers}
        if verdict.state != self.state:
            tqdm.write(f"health: {verdict.message}", file=self.stream or sys.stderr)
            fields["health_message"] = verdict.message
            self.state = verdict.state
        return fields

    def verdict(self, trainer: Trainer, values: dict[str, float]) -> Verdict:
        """The state at this log, from the last measured spread and this window's values."""
        cfg = trainer.config
        step = trainer.step
        numbers: dict[str, float] = {}
        warming = None
        if self.adversarial:
            separated = discriminator_separates(cfg.loss, values)
            if self.state == "d_won" and not separated:  # no flapping on noisy logits
                self._clear_since = self._clear_since if self._clear_since is not None else step
                separated = step - self._clear_since < D_WON_CLEAR_STEPS
            else:
                self._clear_since = None
            self._won_since = (self._won_since if self._won_since is not None else step) \
                if separated else None
        if trainer.updater.ema is not None:
            fraction = ema_horizon(trainer.updater.ema.decay, cfg.ema_rampup, step, cfg.batch_size)
            numbers["ema_horizon"] = round(fraction, 3)
            if fraction >= EMA_WARMING_FRACTION:
                warming = fraction
        ratio = self.ratio / RECOVERY if self.ratio is not None and self.state == "collapse" \
            else self.ratio
        if ratio is not None and warming is None and collapsed(ratio, step, self.peak):
            what = "samples are all the same" if self.ratio < IDENTICAL_RATIO else \
                "samples are losing their variety"
            advice = ("try a lower --beta or a longer --kl-warmup" if self.is_vae else
                      "try --augment diffaug (a few hundred images) or ada, --r1 1, --loss hinge "
                      "or a lower --lr; previews of earlier steps may be the best this run made")
            return Verdict("collapse", f"mode collapse at step {step}: {what} (their spread is "
                           f"{self.ratio:.2f} x that of the training images); {advice}", numbers)
        if self.adversarial:
            if self._won_since is not None and step - self._won_since >= D_WON_STEPS:
                numbers["d_won_steps"] = step - self._won_since
                shown = ", ".join(f"{k} {values[k]:.2f}" for k in ("d_real", "d_fake", "ada_p", "ada_r")
                                  if k in values)
                tries = "--augment diffaug or ada" if cfg.augment == "none" else \
                    "more images or a smaller --width"
                return Verdict("d_won", f"the discriminator has won at step {step}: it has told real "
                               f"from generated images apart for {step - self._won_since} steps "
                               f"({shown}), a sign it is overfitting the training images; if the "
                               f"previews stop improving, try {tries}, a lower --lr-d (e.g. half "
                               "of --lr) or --r1 1", numbers)
        if warming is not None:
            return Verdict("ema_warming", f"the EMA generator is still warming up at step {step}: its "
                           f"average spans {warming:.0%} of the images seen so far, so previews "
                           "may look like noise for a while (a smaller --ema or --ema-rampup "
                           "0.05 shortens this)", numbers)
        return Verdict("ok", f"training looks healthy again at step {step}", numbers)

    @torch.no_grad()
    def _measure(self, trainer: Trainer) -> float | None:
        """Spread of the preview network's samples over that of the real batch, or None."""
        if self.real_spread <= 0:
            return None
        devices = [trainer.device] if trainer.device.type == "cuda" else []
        parts = []
        with torch.random.fork_rng(devices=devices):  # never move the training's random state
            for i in range(0, len(self.z), self.chunk):
                labels = self.labels[i:i + self.chunk] if self.labels is not None else None
                parts.append(features(trainer.preview_sample(self.z[i:i + self.chunk], labels)))
        images = torch.cat(parts)
        if not torch.isfinite(images).all():
            return None
        return spread(images) / self.real_spread
