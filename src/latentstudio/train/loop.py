"""The model-agnostic training loop: data on the device, steps, logging, checkpoints, resume.

`train(config)` runs a new training; `train(resume="runs/NAME")` continues one exactly where
it stopped (same weights as an uninterrupted run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from latentstudio import __version__, atomic
from latentstudio.data import ImageSet, load_dataset
from latentstudio.errors import UserError
from latentstudio.models import Family, ModelConfig, get_family
from latentstudio.train.callbacks import Callback, RunWriter
from latentstudio.train.checkpoint import load_checkpoint, load_models, restore_rng, save_checkpoint
from latentstudio.train.config import TrainConfig
from latentstudio.train.steps import STEPS

MAX_DIVERGENCE_RETRIES = 3
PREVIEW_SEED_OFFSET = 12345  # previews use their own fixed latents, apart from training noise


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else CPU; anything else is checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    return device


def resolve_config(cfg: TrainConfig, family: Family) -> TrainConfig:
    """Fill the settings left as None with the family's defaults."""
    fallback = {"lr": 2e-4, "betas": (0.5, 0.999), "optimizer": "adam", "loss": "bce", "n_critic": 1,
                "epochs": 20, "width": 64}
    changes = {}
    for name in ("lr", "betas", "optimizer", "loss", "n_critic", "clip", "gp_weight", "epochs",
                 "width"):
        if getattr(cfg, name) is None:
            changes[name] = family.defaults.get(name, fallback.get(name))
    return dataclasses.replace(cfg, **changes)


def model_config(cfg: TrainConfig, data: ImageSet, family: Family) -> ModelConfig:
    return ModelConfig(
        resolution=cfg.resolution, channels=data.channels, latent_dim=cfg.latent_dim,
        width=cfg.width, num_classes=data.num_classes if family.conditional else 0,
        spectral_norm=cfg.spectral_norm, batch_norm=family.defaults.get("batch_norm", True),
    )


class DeviceLoader:
    """The whole uint8 dataset on the device; shuffles, batches and normalises there.

    The order of epoch e depends only on (seed, e), so a resumed run sees the same batches.
    """

    def __init__(self, data: ImageSet, batch_size: int, seed: int, device: torch.device,
                 channels_last: bool = False) -> None:
        self.images = data.images.to(device)
        self.labels = data.labels.to(device) if data.labels is not None else None
        self.batch_size = min(batch_size, len(data))
        self.seed = seed
        self.device = device
        self.channels_last = channels_last

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def batches(self, epoch: int, start: int = 0):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.images), generator=g).to(self.device)
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx].float().div_(127.5).sub_(1.0)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, (self.labels[idx] if self.labels is not None else None)


class Trainer:
    """Owns one run: models, step, data, run folder. Callbacks add previews, logs and metrics."""

    def __init__(self, config: TrainConfig, run_dir: Path, callbacks: Sequence[Callback] = (),
                 progress: bool = True, payload: dict[str, Any] | None = None) -> None:
        self.family = get_family(config.model)
        self.config = resolve_config(config, self.family)
        self.run_dir = run_dir
        self.device = resolve_device(self.config.device)
        self.progress = progress
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.data = load_dataset(cfg.data, cfg.resolution, cfg.channels, cfg.fit, seed=cfg.seed,
                                 limit=cfg.data_limit, progress=progress)
        if self.family.conditional and self.data.labels is None:
            raise UserError(f"model {cfg.model!r} needs class labels, but data {cfg.data!r} has none "
                            "(use shapes, mnist, fashion-mnist, cifar10 or a folder with class subfolders)")
        self.model_config = model_config(cfg, self.data, self.family)
        self.models = nn.ModuleDict(self.family.build(self.model_config)).to(self.device)
        channels_last = self.device.type == "cuda"
        if channels_last:
            self.models.to(memory_format=torch.channels_last)
        self.loader = DeviceLoader(self.data, cfg.batch_size, cfg.seed, self.device, channels_last)
        self.steps_per_epoch = len(self.loader)
        self.total_steps = cfg.steps or cfg.epochs * self.steps_per_epoch
        self.step_fn = STEPS[self.family.kind](self.models, cfg, self.device, self.total_steps)
        self.step = 0
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0
        self.elapsed = 0.0
        self.divergences = 0
        self.callbacks = [RunWriter(), *callbacks]
        self._stop_requested = False
        self._acc: dict[str, torch.Tensor] = {}
        self._acc_n: dict[str, int] = {}
        if payload is not None:
            self._restore(payload)
        fixed = torch.Generator().manual_seed(cfg.seed + PREVIEW_SEED_OFFSET)
        self.preview_z = torch.randn(cfg.preview_count, cfg.latent_dim, generator=fixed)
        self.preview_labels = self._preview_labels()

    # ----- state
    def _restore(self, payload: dict[str, Any]) -> None:
        load_models(self.models, payload, str(self.run_dir))
        self.step_fn.load_state_dict(payload["step_state"])
        restore_rng(payload)
        p = payload["progress"]
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.elapsed, self.divergences = p.get("elapsed", 0.0), p.get("divergences", 0)

    def save_checkpoint(self, name: str = "last") -> Path:
        """Write checkpoints/NAME.pt with everything needed to resume."""
        progress = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                    "elapsed": self.elapsed, "divergences": self.divergences}
        return save_checkpoint(self.run_dir / "checkpoints" / f"{name}.pt", models=dict(self.models),
                               step_state=self.step_fn.state_dict(), config=self.config.to_dict(),
                               progress=progress)

    # ----- sampling
    def _preview_labels(self) -> torch.Tensor | None:
        k = self.model_config.num_classes
        if not k:
            return None
        per_row = max(1, self.config.preview_count // k)
        return torch.arange(k).repeat_interleave(per_row)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from latents, with the preview network (EMA when enabled), on CPU."""
        net = self.step_fn.sampler()
        was_training = net.training
        net.eval()
        out = []
        for i in range(0, len(z), 256):
            y = labels[i:i + 256].to(self.device) if labels is not None else None
            out.append(net(z[i:i + 256].to(self.device), y).float().cpu())
        net.train(was_training)
        return torch.cat(out)

    def preview(self) -> tuple[torch.Tensor, int]:
        """The preview grid's images and how many go in a row.

        Conditional models: one row per class, the same latent down each column.
        VAEs: rows of fixed real images, their reconstructions, and prior samples.
        """
        if self.preview_labels is not None:
            k = self.model_config.num_classes
            per_row = len(self.preview_labels) // k
            return self.sample(self.preview_z[:per_row].repeat(k, 1), self.preview_labels), per_row
        images = self.sample(self.preview_z)
        if self.family.kind == "vae":
            real = self.data.images[: len(images)].float().div(127.5).sub(1)
            recon = self.reconstruct(real)
            per_row = max(1, int(math.sqrt(len(images))))
            rows = []
            for i in range(0, len(images), per_row):
                rows += [real[i:i + per_row], recon[i:i + per_row], images[i:i + per_row]]
            return torch.cat(rows), per_row
        return images, 0

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        enc, dec = self.models["encoder"], self.step_fn.sampler()
        enc.eval(), dec.eval()
        mu, _ = enc(x.to(self.device), None)
        out = dec(mu, None).float().cpu()
        enc.train(), dec.train()
        return out

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Send a record (step, epoch, values) to every callback's on_log (metrics.jsonl, TensorBoard)."""
        record = {"step": self.step, "epoch": self.epoch, **record}
        for cb in self.callbacks:
            cb.on_log(self, record)

    # ----- loop
    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self._acc[k] = self._acc[k] + v if k in self._acc else v.clone()
            self._acc_n[k] = self._acc_n.get(k, 0) + 1

    def _flush(self, bar: tqdm, t_last: float, steps_since: int) -> bool:
        """Log averaged losses (one host sync); False when a loss went non-finite."""
        values = {k: (v / self._acc_n[k]).item() for k, v in self._acc.items()}
        self._acc, self._acc_n = {}, {}
        finite = all(math.isfinite(v) for v in values.values())
        dt = max(time.perf_counter() - t_last, 1e-9)
        record = {**values, "time": round(self.elapsed, 3),
                  "images_per_s": round(steps_since * self.loader.batch_size / dt, 1)}
        self.log_metrics(record)
        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
        return finite

    def _recover_from_divergence(self) -> None:
        """Restore the last good checkpoint with halved learning rates, or give up."""
        self.divergences += 1
        if self.divergences > MAX_DIVERGENCE_RETRIES:
            raise UserError(f"training diverged (non-finite loss at step {self.step}) after "
                            f"{MAX_DIVERGENCE_RETRIES} restarts with halved learning rates; the last "
                            f"good checkpoint is in {self.run_dir / 'checkpoints'}; try a lower --lr, "
                            "--precision fp32, or --loss hinge")
        tries = self.divergences
        self._restore(load_checkpoint(self.run_dir / "checkpoints" / "last.pt", self.device))
        self.divergences = tries
        self.step_fn.set_lr_scale(0.5 ** tries)
        msg = (f"non-finite loss: restored the last checkpoint (step {self.step}) and set the "
               f"learning rates to {0.5 ** tries:g} x the configured ones "
               f"(try {tries} of {MAX_DIVERGENCE_RETRIES})")
        tqdm.write(f"warning: {msg}", file=sys.stderr)
        self.log_metrics({"event": msg})

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True
        tqdm.write("stopping after this step and saving a checkpoint (Ctrl-C again to abort)",
                   file=sys.stderr)

    def fit(self) -> Path:
        """Train until the configured epochs/steps; return the run folder."""
        cfg = self.config
        for cb in self.callbacks:
            cb.on_train_start(self)
        if self.step == 0:
            self.save_checkpoint()  # a known-good state for the divergence guard
        old_handler = None
        try:
            old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread
            pass
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress,
                   desc=f"{cfg.model} on {cfg.data}", unit="step", dynamic_ncols=True)
        try:
            self._run(bar)
        finally:
            bar.close()
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        self.save_checkpoint()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.run_dir

    def _run(self, bar: tqdm) -> None:
        cfg = self.config
        t_last, steps_since, t0 = time.perf_counter(), 0, time.perf_counter() - self.elapsed
        while self.step < self.total_steps and not self._stop_requested:
            for real, labels in self.loader.batches(self.epoch, self.batch_in_epoch):
                self._accumulate(self.step_fn(real, labels, self.step))
                self.step += 1
                self.batch_in_epoch += 1
                steps_since += 1
                bar.update(1)
                self.elapsed = time.perf_counter() - t0
                # Also check at epoch end, the last step and on Ctrl-C: never checkpoint NaN weights.
                if self.step % cfg.log_every == 0 or self.batch_in_epoch == len(self.loader) or \
                        self.step >= self.total_steps or self._stop_requested:
                    if not self._flush(bar, t_last, steps_since):
                        self._recover_from_divergence()
                        t0 = time.perf_counter() - self.elapsed
                        bar.n = self.step
                        break
                    t_last, steps_since = time.perf_counter(), 0
                if self.step >= self.total_steps or self._stop_requested:
                    break
            else:
                self.batch_in_epoch = 0
                self.epoch += 1
                for cb in self.callbacks:
                    cb.on_epoch_end(self)
                if self.epoch % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
        if self._acc:
            self._flush(bar, t_last, max(steps_since, 1))
        if self._stop_requested:
            tqdm.write(f"interrupted at step {self.step}: checkpoint saved; continue with "
                       f"`latentstudio train --resume {self.run_dir}`", file=sys.stderr)


def default_run_dir(cfg: TrainConfig) -> Path:
    data = Path(cfg.data).name if ":" not in cfg.data else cfg.data.replace(":", "-")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.model}-{data}-{cfg.resolution}px-{stamp}"


def _write_config(trainer: Trainer) -> None:
    data = trainer.data
    atomic.write_json(trainer.run_dir / "config.json", {
        "latentstudio_version": __version__,
        "model": trainer.config.model,
        "kind": trainer.family.kind,
        "config": trainer.config.to_dict(),
        "model_config": dataclasses.asdict(trainer.model_config),
        "data": {"spec": trainer.config.data, "fingerprint": data.fingerprint(), "count": len(data),
                 "resolution": data.resolution, "channels": data.channels,
                 "class_names": data.class_names},
        "created": datetime.now().isoformat(timespec="seconds"),
    })


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run folder, or a UserError saying the folder is not a run."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a latentstudio run folder (no config.json)")
    try:
        meta = json.loads(path.read_text())
        meta["config"]["model"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is damaged or not a latentstudio config") from None
    return meta


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None,
          callbacks: Sequence[Callback] = (), progress: bool = True,
          overrides: dict[str, Any] | None = None) -> Path:
    """Train a new run from `config`, or continue the run folder `resume`; return the run folder.

    When resuming, `overrides` may raise `epochs`/`steps` (or change logging settings).
    """
    if resume is not None:
        run_dir = Path(resume)
        meta = read_run_config(run_dir)
        cfg_dict = {**meta["config"], **(overrides or {})}
        cfg = TrainConfig.from_dict(cfg_dict)
        payload = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        trainer = Trainer(cfg, run_dir, callbacks, progress, payload)
        if trainer.data.fingerprint() != meta["data"]["fingerprint"]:
            print(f"warning: the data behind {cfg.data!r} changed since this run started",
                  file=sys.stderr)
        if overrides:
            meta["config"] = trainer.config.to_dict()
            atomic.write_json(run_dir / "config.json", meta)
        return trainer.fit()
    trainer = _new_trainer(config, callbacks, progress)
    return trainer.fit()


def _new_trainer(config: TrainConfig | None, callbacks: Sequence[Callback], progress: bool) -> Trainer:
    cfg = config or TrainConfig()
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    if (run_dir / "checkpoints" / "last.pt").exists() or (run_dir / "config.json").exists():
        raise UserError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                        "or choose another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder")
    # Build everything (and fail on bad settings) before anything is written.
    trainer = Trainer(dataclasses.replace(cfg, out=str(run_dir)), run_dir, callbacks, progress)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create run folder {run_dir}: {e.strerror}") from None
    _write_config(trainer)
    return trainer
