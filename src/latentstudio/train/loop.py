"""The model-agnostic training loop: data on the device, steps, logging, checkpoints, resume.

`train(config)` runs a new training; `train(resume="runs/NAME")` continues one exactly where
it stopped (same weights as an uninterrupted run). Under torchrun every process runs `train`:
each trains on its shard of the data through DistributedDataParallel and rank 0 alone writes
the run folder (see train/distributed.py).

Speed: the uint8 dataset lives on the device, losses are summed on the device and read once
every `log_every` steps (the only host sync of the loop), and `--compile` compiles the networks,
falling back to eager mode with a warning when compilation fails.
"""

from __future__ import annotations

import copy
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
from latentstudio.precision import describe_precision
from latentstudio.train import distributed
from latentstudio.train.callbacks import Callback, RunWriter
from latentstudio.train.checkpoint import load_checkpoint, load_models, restore_rng, save_checkpoint
from latentstudio.train.config import TrainConfig
from latentstudio.train.distributed import World
from latentstudio.train.steps import STEPS

MAX_DIVERGENCE_RETRIES = 3
PREVIEW_SEED_OFFSET = 12345  # previews use their own fixed latents, apart from training noise
# Keyword arguments of torch.compile for --compile; shapes never change within a run.
COMPILE_OPTIONS: dict[str, Any] = {"dynamic": False}


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
    return model_config_for(cfg, family, data.channels, data.num_classes)


def model_config_for(cfg: TrainConfig, family: Family, channels: int, num_classes: int) -> ModelConfig:
    """The ModelConfig of a (resolved) config for data with these channels and classes."""
    return ModelConfig(
        resolution=cfg.resolution, channels=channels, latent_dim=cfg.latent_dim,
        width=cfg.width, num_classes=num_classes if family.conditional else 0,
        spectral_norm=cfg.spectral_norm, batch_norm=family.defaults.get("batch_norm", True),
    )


class DeviceLoader:
    """The whole uint8 dataset on the device; shuffles, batches and normalises there.

    The order of epoch e depends only on (seed, e), so a resumed run sees the same batches.
    With several processes, rank r keeps images r, r + world_size, ... (equal shares, the few
    left over dropped) and takes batch_size / world_size of every batch, so `batch_size` is the
    total over all ranks and an epoch has the same number of steps on every rank.
    """

    def __init__(self, data: ImageSet, batch_size: int, seed: int, device: torch.device,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1) -> None:
        images, labels = data.images, data.labels
        if world_size > 1:
            if batch_size % world_size:
                raise UserError(f"--batch-size {batch_size} must be divisible by the number of "
                                f"processes ({world_size}): it is the total over all of them")
            share = len(images) // world_size
            if share == 0:
                raise UserError(f"{len(images)} images cannot be shared among {world_size} processes")
            images = images[rank::world_size][:share]
            labels = labels[rank::world_size][:share] if labels is not None else None
            batch_size //= world_size
        self.images = images.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size = min(batch_size, len(images))
        self.seed = seed
        self.rank = rank
        self.device = device
        self.channels_last = channels_last

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def batches(self, epoch: int, start: int = 0):
        seed = self.seed * 1_000_003 + epoch + self.rank * 7_777_777_777
        g = torch.Generator().manual_seed(seed % 2**63)
        order = torch.randperm(len(self.images), generator=g)
        if self.device.type == "cuda":  # from pinned memory the copy does not wait for the GPU
            order = order.pin_memory().to(self.device, non_blocking=True)
        else:
            order = order.to(self.device)
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx].float().div_(127.5).sub_(1.0)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, (self.labels[idx] if self.labels is not None else None)


class Trainer:
    """Owns one run: models, step, data, run folder. Callbacks add previews, logs and metrics."""

    def __init__(self, config: TrainConfig, run_dir: Path, callbacks: Sequence[Callback] = (),
                 progress: bool = True, payload: dict[str, Any] | None = None, *,
                 world: World | None = None) -> None:
        self.family = get_family(config.model)
        self.config = resolve_config(config, self.family)
        self.run_dir = run_dir
        self.world = world or distributed.current()
        self.device = distributed.rank_device(resolve_device(self.config.device), self.world)
        self.progress = progress and self.world.is_main
        distributed.set_cpu_threads(self.world)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv kernels once
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.data = load_dataset(cfg.data, cfg.resolution, cfg.channels, cfg.fit, seed=cfg.seed,
                                 limit=cfg.data_limit, progress=self.progress)
        if self.family.conditional and self.data.labels is None:
            raise UserError(f"model {cfg.model!r} needs class labels, but data {cfg.data!r} has none "
                            "(use shapes, mnist, fashion-mnist, cifar10 or a folder with class subfolders)")
        self.model_config = model_config(cfg, self.data, self.family)
        self.models = nn.ModuleDict(self.family.build(self.model_config)).to(self.device)
        # NHWC convolutions are faster on GPUs (tensor cores) and with oneDNN on CPUs (measured
        # 5-30% per step here).
        channels_last = self.device.type in ("cuda", "cpu")
        if channels_last:
            self.models.to(memory_format=torch.channels_last)
        self.loader = DeviceLoader(self.data, cfg.batch_size, cfg.seed, self.device, channels_last,
                                   self.world.rank, self.world.size)
        self.steps_per_epoch = len(self.loader)
        self.total_steps = cfg.steps or cfg.epochs * self.steps_per_epoch
        self.step_fn = STEPS[self.family.kind](self.models, cfg, self.device, self.total_steps)
        if self.world.rank:
            self.step_fn.reseed(self.world.rank, 0)
        self.step = 0
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0
        self.elapsed = 0.0
        self.divergences = 0
        # Rank 0 writes the run folder; a callback runs on every rank only if it says all_ranks.
        self.callbacks = [RunWriter(), *callbacks] if self.world.is_main else \
            [cb for cb in callbacks if getattr(cb, "all_ranks", False)]
        self._stop_requested = False  # acted on by every rank
        self._stop_local = False  # Ctrl-C seen by this process
        self._acc: dict[str, torch.Tensor] = {}
        self._acc_n: dict[str, int] = {}
        if payload is not None:
            self._restore(payload)
        if self.world.distributed:
            self.step_fn.wrap_networks(lambda net: distributed.wrap(net, self.device))
        self._compile_checks = 0  # steps still run with a fallback to eager mode
        if cfg.compile:
            self._compile()
        fixed = torch.Generator().manual_seed(cfg.seed + PREVIEW_SEED_OFFSET)
        self.preview_z = torch.randn(cfg.preview_count, cfg.latent_dim, generator=fixed)
        self.preview_labels = self._preview_labels()

    # ----- state
    def _restore(self, payload: dict[str, Any]) -> None:
        load_models(self.models, payload, str(self.run_dir))
        self.step_fn.load_state_dict(payload["step_state"])
        if self.world.distributed:
            # Only rank 0's generators were saved, and each rank draws its own noise anyway:
            # restoring rank 0's CUDA generator on every rank's GPU would not make them exact.
            torch.set_rng_state(payload["rng"]["torch"])
        else:
            restore_rng(payload, self.device)
        p = payload["progress"]
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.elapsed, self.divergences = p.get("elapsed", 0.0), p.get("divergences", 0)
        if self.world.rank:  # only rank 0's noise state is saved
            self.step_fn.reseed(self.world.rank, self.step)

    def save_checkpoint(self, name: str = "last") -> Path:
        """Write checkpoints/NAME.pt with everything needed to resume (rank 0 only)."""
        path = self.run_dir / "checkpoints" / f"{name}.pt"
        if not self.world.is_main:
            return path
        progress = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                    "elapsed": self.elapsed, "divergences": self.divergences}
        return save_checkpoint(path, models=dict(self.models),
                               step_state=self.step_fn.state_dict(), config=self.config.to_dict(),
                               progress=progress, device=self.device)

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

    # ----- compilation
    def _compile(self) -> None:
        """torch.compile the training networks; the first steps fall back to eager on failure."""
        self._eager_networks = self.step_fn.networks()
        try:
            self.step_fn.wrap_networks(lambda net: torch.compile(net, **COMPILE_OPTIONS))
        except Exception as e:  # noqa: BLE001 - e.g. a Python version torch.compile does not support
            self._compile_failed(e)
            return
        # Compilation happens on first use; every path (D only, D and G) has run by step n_critic.
        self._compile_checks = (self.config.n_critic or 1) + 1

    def _compile_failed(self, error: BaseException) -> None:
        self.step_fn.set_networks(self._eager_networks)
        self._compile_checks = 0
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        msg = f"--compile failed ({type(error).__name__}: {reason}); training without it"
        tqdm.write(f"warning: {msg}", file=sys.stderr)

    def _snapshot(self) -> dict[str, Any]:
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return copy.deepcopy({"models": self.models.state_dict(), "step": self.step_fn.state_dict(),
                              "rng": rng})

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One step; while compiled code is new, a failure restores the state and runs eagerly."""
        if not self._compile_checks:
            return self.step_fn(real, labels, self.step)
        self._compile_checks -= 1
        saved = self._snapshot()
        try:
            return self.step_fn(real, labels, self.step)
        except (torch.cuda.OutOfMemoryError, KeyboardInterrupt, UserError):
            raise
        except Exception as e:  # noqa: BLE001 - any compiler failure: keep training without it
            self._compile_failed(e)
            self.models.load_state_dict(saved["models"])
            self.step_fn.load_state_dict(saved["step"])
            torch.set_rng_state(saved["rng"]["cpu"])
            if "cuda" in saved["rng"]:
                torch.cuda.set_rng_state(saved["rng"]["cuda"], self.device)
            return self.step_fn(real, labels, self.step)

    # ----- loop
    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self._acc[k] = self._acc[k] + v if k in self._acc else v.clone()
            self._acc_n[k] = self._acc_n.get(k, 0) + 1

    def _flush(self, bar: tqdm, t_last: float, steps_since: int) -> bool:
        """Log averaged losses (one host sync); False when a loss went non-finite.

        With several processes the losses are averaged over the ranks, so every rank agrees on
        divergence, and a Ctrl-C seen by any rank stops all of them at the same step.
        """
        names = list(self._acc)
        packed = torch.stack([self._acc[k].float() / self._acc_n[k] for k in names]
                             + [torch.tensor(float(self._stop_local), device=self.device)])
        if self.world.distributed:
            distributed.all_reduce(packed, self.world)
            self._stop_requested = self._stop_requested or bool(packed[-1] > 0)
        values = dict(zip(names, packed.tolist()[:-1], strict=True))
        self._acc, self._acc_n = {}, {}
        finite = all(math.isfinite(v) for v in values.values())
        dt = max(time.perf_counter() - t_last, 1e-9)
        images = steps_since * self.loader.batch_size * self.world.size
        record = {**values, "time": round(self.elapsed, 3), "images_per_s": round(images / dt, 1)}
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
        path = self.run_dir / "checkpoints" / "last.pt"
        where = "cpu" if self.world.distributed else self.device
        self._restore(distributed.on_main(lambda: load_checkpoint(path, where), self.world))
        self.divergences = tries
        self.step_fn.set_lr_scale(0.5 ** tries)
        msg = (f"non-finite loss: restored the last checkpoint (step {self.step}) and set the "
               f"learning rates to {0.5 ** tries:g} x the configured ones "
               f"(try {tries} of {MAX_DIVERGENCE_RETRIES})")
        tqdm.write(f"warning: {msg}", file=sys.stderr)
        self.log_metrics({"event": msg})

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._stop_local:
            raise KeyboardInterrupt
        self._stop_local = True
        if not self.world.distributed:  # several ranks agree on the step to stop at in _flush
            self._stop_requested = True
        if self.world.is_main:
            tqdm.write("stopping soon and saving a checkpoint (Ctrl-C again to abort)",
                       file=sys.stderr)

    def fit(self) -> Path:
        """Train until the configured epochs/steps; return the run folder."""
        try:
            return self._fit()
        except torch.cuda.OutOfMemoryError:
            # Nothing is saved after the failure: the last checkpoint stays valid.
            raise UserError(out_of_memory_message(self)) from None

    def _fit(self) -> Path:
        cfg = self.config
        if self.progress:
            print(f"precision: {describe_precision(cfg.precision, self.device)}", file=sys.stderr)
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
        distributed.barrier(self.world)  # no rank leaves while rank 0 still writes
        return self.run_dir

    def _run(self, bar: tqdm) -> None:
        cfg = self.config
        t_last, steps_since, t0 = time.perf_counter(), 0, time.perf_counter() - self.elapsed
        while self.step < self.total_steps and not self._stop_requested:
            for real, labels in self.loader.batches(self.epoch, self.batch_in_epoch):
                self._accumulate(self._train_step(real, labels))
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
                # At the epoch's last batch, fall through to the epoch end (previews, callbacks).
                if (self.step >= self.total_steps or self._stop_requested) and \
                        self.batch_in_epoch < len(self.loader):
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
        "resolved_precision": trainer.step_fn.precision,  # what --precision auto chose here
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
    Under torchrun each process calls this; a run resumes with any number of processes.
    """
    world = distributed.setup()
    try:
        if resume is not None:
            trainer = _resumed_trainer(Path(resume), callbacks, progress, overrides, world)
        else:
            trainer = _new_trainer(config, callbacks, progress, world)
        return trainer.fit()
    except torch.cuda.OutOfMemoryError:  # while building; fit() explains its own
        raise UserError("out of GPU memory while loading the data and models; try a smaller "
                        "--data-limit, --resolution or --width (see `latentstudio estimate`)") from None
    finally:
        distributed.cleanup()


def _resumed_trainer(run_dir: Path, callbacks: Sequence[Callback], progress: bool,
                     overrides: dict[str, Any] | None, world: World) -> Trainer:
    def read() -> tuple[dict[str, Any], dict[str, Any]]:
        return read_run_config(run_dir), load_checkpoint(run_dir / "checkpoints" / "last.pt")

    meta, payload = distributed.on_main(read, world)
    cfg = TrainConfig.from_dict({**meta["config"], **(overrides or {})})
    trainer = Trainer(cfg, run_dir, callbacks, progress, payload, world=world)
    if world.is_main:
        if trainer.data.fingerprint() != meta["data"]["fingerprint"]:
            print(f"warning: the data behind {cfg.data!r} changed since this run started",
                  file=sys.stderr)
        if overrides:
            meta["config"] = trainer.config.to_dict()
            atomic.write_json(run_dir / "config.json", meta)
    return trainer


def _new_trainer(config: TrainConfig | None, callbacks: Sequence[Callback], progress: bool,
                 world: World = distributed.SINGLE) -> Trainer:
    cfg = config or TrainConfig()

    def choose_run_dir() -> Path:
        run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
        if (run_dir / "checkpoints" / "last.pt").exists() or (run_dir / "config.json").exists():
            raise UserError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                            "or choose another --out")
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"--out {run_dir} is a file, not a folder")
        return run_dir

    run_dir = distributed.on_main(choose_run_dir, world)  # one name, even if clocks differ
    # Build everything (and fail on bad settings) before anything is written.
    trainer = Trainer(dataclasses.replace(cfg, out=str(run_dir)), run_dir, callbacks, progress,
                      world=world)
    if world.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create run folder {run_dir}: {e.strerror}") from None
        _write_config(trainer)
    return trainer


def device_memory(device: torch.device) -> tuple[str, int]:
    """The GPU's name and total memory in bytes."""
    return torch.cuda.get_device_name(device), torch.cuda.get_device_properties(device).total_memory


def out_of_memory_message(trainer: Trainer) -> str:
    """One line for a training that ran out of GPU memory, with the largest batch that fits."""
    from latentstudio.train.memory import format_bytes, suggest_batch_size

    cfg = trainer.config
    name, total = device_memory(trainer.device)
    data_bytes = trainer.loader.images.nelement() + (
        trainer.loader.labels.nelement() * 8 if trainer.loader.labels is not None else 0)
    try:
        fits = suggest_batch_size(cfg, trainer.model_config, total, data_bytes, trainer.world.size)
    except Exception:  # noqa: BLE001 - the estimate is advice; never hide the real error behind it
        fits = 0
    if not fits:
        advice = "not even a small batch fits: try a lower --resolution or --width"
    elif fits < cfg.batch_size:
        advice = f"try --batch-size {fits}, the largest that fits by `latentstudio estimate`"
    else:  # the estimate says it fits: something else holds memory
        advice = (f"`latentstudio estimate` says it should fit, so another program may be using "
                  f"this GPU; try --batch-size {max(1, cfg.batch_size // 2)}")
    return (f"out of GPU memory at step {trainer.step} with --batch-size {cfg.batch_size} on "
            f"{name} ({format_bytes(total)}): {advice}; the last checkpoint in "
            f"{trainer.run_dir / 'checkpoints'} is intact")
