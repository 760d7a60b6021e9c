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
import errno
import math
import signal
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from latentstudio import atomic
from latentstudio.data import load_dataset
from latentstudio.data.loader import DeviceLoader
from latentstudio.devices import resolve_device
from latentstudio.errors import Interrupted, UserError
from latentstudio.images import from_uint8
from latentstudio.models import get_family
from latentstudio.precision import describe_precision
from latentstudio.runs import (
    default_run_dir,
    drop_metrics_after,
    load_checkpoint,
    load_models,
    preview_latents,
    preview_layout,
    read_run_config,
    restore_rng,
    save_checkpoint,
    write_run_config,
)
from latentstudio.runs.preview import preview_images
from latentstudio.train import distributed
from latentstudio.train.callbacks import Callback, RunWriter
from latentstudio.train.config import (
    TrainConfig,
    grown_size,
    model_config_for,
    parent_mismatch,
    parse_every,
    parse_init_from,
    resolve_config,
)
from latentstudio.train.distributed import World
from latentstudio.train.ema import CALIBRATION_IMAGES, preview_calibration_images
from latentstudio.train.health import HealthMonitor
from latentstudio.train.memory import check_model_fits
from latentstudio.train.steps import step_class

MAX_DIVERGENCE_RETRIES = 3
# Finite blow-ups the divergence guard treats as NaN. No healthy value logged here comes near
# BLOWUP_ABSOLUTE (BCE/hinge logits stay within ~1e2, a VAE's summed reconstruction within ~1e6
# at 128 px); WGAN critics are unbounded but drift, so the relative test compares a window with
# the median of the windows before it, never below a scale of 1 (losses near 0 are common).
BLOWUP_ABSOLUTE = 1e8
BLOWUP_RELATIVE = 1e4
BLOWUP_HISTORY = 20  # log windows the median is taken over
# Errors of a disk that refuses a write: the user can fix these (free space, permissions).
DISK_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied"}
# Files in a run folder only the trainer writes, whose leftover temporary files it may remove.
TRAINER_FILES = {".": ("config.json", "losses.png", "progress.gif"), "checkpoints": ("*.pt", "*.json"),
                 "samples": ("epoch_*.png", "step_*.png")}
# Keyword arguments of torch.compile for --compile; shapes never change within a run.
COMPILE_OPTIONS: dict[str, Any] = {"dynamic": False}


class Trainer:
    """Owns one run: models, step, data, run folder. Callbacks add previews, logs and metrics."""

    def __init__(self, config: TrainConfig, run_dir: Path, callbacks: Sequence[Callback] = (),
                 progress: bool = True, payload: dict[str, Any] | None = None, *,
                 world: World | None = None, init: dict[str, Any] | None = None) -> None:
        self.family = get_family(config.model)
        self.kind = self.family.hooks
        self.config = resolve_config(config, self.family)
        # --init-from a smaller run of a family that grows: its networks get the growth's settings.
        self.grown_from = grown_size(init["meta"], config.model, self.family, self.config.size) \
            if init is not None else None
        if self.grown_from:
            parent_settings = (init["meta"].get("model_config") or {}).get("family_settings") or {}
            self.config = dataclasses.replace(self.config, family_settings={
                **self.config.family_settings, **self.family.grow(self.grown_from, parent_settings)})
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
        self.model_config = model_config_for(cfg, self.family, self.data.channels,
                                             self.data.num_classes)
        check_model_fits(cfg, self.family, self.model_config, self.device)
        self.models = nn.ModuleDict(self.family.build(self.model_config)).to(self.device)
        # NHWC convolutions are faster on GPUs (tensor cores) and with oneDNN on CPUs (measured
        # 5-30% per step here).
        channels_last = self.device.type in ("cuda", "cpu")
        if channels_last:
            self.models.to(memory_format=torch.channels_last)
        self.loader = DeviceLoader(self.data, cfg.batch_size, cfg.seed, self.device, channels_last,
                                   self.world.rank, self.world.size, mirror=cfg.mirror)
        used = self.loader.batch_size * self.world.size
        if used != cfg.batch_size:
            if self.world.is_main:
                print(f"warning: --batch-size {cfg.batch_size} is more than the {len(self.data)} "
                      f"images of {cfg.data!r}: training with batches of {used}", file=sys.stderr)
            self.config = cfg = dataclasses.replace(cfg, batch_size=used)  # config.json says so
        self.steps_per_epoch = len(self.loader)
        self.total_steps = cfg.steps or cfg.epochs * self.steps_per_epoch
        self.updater = step_class(self.kind)(self.models, cfg, self.device, self.total_steps)
        if self.world.rank:
            self.updater.reseed(self.world.rank, 0)
        self.step = 0
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0
        self.elapsed = 0.0
        self.divergences = 0
        self.checkpoint_every = parse_every(cfg.checkpoint_every, "--checkpoint-every")
        self._last_checkpoint_time = 0.0  # training time of the last checkpoint
        # Rank 0 writes the run folder; a callback runs on every rank only if it says all_ranks.
        # The health monitor adds to the log records before RunWriter writes them.
        self.callbacks = [HealthMonitor(), RunWriter(), *callbacks] if self.world.is_main else \
            [cb for cb in callbacks if getattr(cb, "all_ranks", False)]
        self._stop_requested = False  # acted on by every rank
        self.interrupted = False  # stopped by Ctrl-C before the configured end
        self.continue_as = run_dir  # what `--resume` continues (a growth's run, in its first stage)
        self._stop_local = False  # Ctrl-C seen by this process
        self._acc: dict[str, torch.Tensor] = {}
        self._acc_n: dict[str, int] = {}
        self._scale: dict[str, deque[float]] = {}  # |value| of recent log windows, per name
        if payload is not None:
            self._restore(payload)
        self.parent: dict[str, Any] | None = None  # the --init-from run, as config.json records it
        if init is not None:
            self._init_from(init)
        if self.world.distributed:
            self.updater.wrap_networks(lambda net: distributed.wrap(net, self.device))
        self._compile_checks = 0  # steps still run with a fallback to eager mode
        if cfg.compile:
            self._compile()
        self.preview_z = preview_latents(self.kind, cfg.seed, cfg.preview_count, cfg.latent_dim)

    # ----- state
    def _networks(self) -> dict[str, nn.Module]:
        """Every network a checkpoint holds: the models, and the EMA copy as `<name>_ema`."""
        nets = dict(self.models)
        if self.updater.ema is not None:
            nets[f"{self.kind.image_module}_ema"] = self.updater.ema.calibrated(CALIBRATION_IMAGES)
        return nets

    def _restore(self, payload: dict[str, Any]) -> None:
        load_models(self._networks(), payload, str(self.run_dir))
        self.updater.load_state_dict(payload["step_state"])
        if self.world.distributed:
            # Only rank 0's generators were saved, and each rank draws its own noise anyway:
            # restoring rank 0's CUDA generator on every rank's GPU would not make them exact.
            torch.set_rng_state(payload["rng"]["torch"])
        else:
            restore_rng(payload, self.device)
        p = payload["progress"]
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.elapsed, self.divergences = p.get("elapsed", 0.0), p.get("divergences", 0)
        self._last_checkpoint_time = self.elapsed
        self.updater.schedule_steps = p.get("schedule_steps") or self._saved_total(payload)
        if self.world.rank:  # only rank 0's noise state is saved
            self.updater.reseed(self.world.rank, self.step)

    def _init_from(self, parent: dict[str, Any]) -> None:
        """Start from the weights of `parent` (from load_parent): every network, the EMA copy
        from the parent's (or its generator when it kept none); optimisers stay fresh, step 0.
        A smaller parent is grown: each of its tensors goes where the family says, and what
        lands nowhere or does not fit starts fresh; both generators start from its EMA copy."""
        meta, payload, source = parent["meta"], parent["payload"], parent["source"]
        problem = parent_mismatch(source, meta, self.config.model,
                                  dataclasses.asdict(self.model_config), bool(self.grown_from))
        if problem:
            raise UserError(problem)
        saved, image = payload["models"], self.kind.image_module
        taken: dict[str, tuple[int, int]] = {}
        try:
            for name, net in self._networks().items():
                state = saved[name] if name in saved else saved[name.removesuffix("_ema")]
                if self.grown_from and f"{name}_ema" in saved:
                    # The smaller run's pictures are its average's. Its raw generator swings
                    # (FastGAN at a CPU folder's rates): held, those stages would stay at the
                    # swing, and the grown average would drift to them within a few hundred
                    # steps (busts with faces became open loops, at lr 1e-3 and 2e-4 alike).
                    state = saved[f"{name}_ema"]
                if self.grown_from:
                    state, taken[name] = self._grown_state(name.removesuffix("_ema"), net, state)
                net.load_state_dict(state)
        except (KeyError, RuntimeError):
            raise UserError(f"cannot start from {source}: its checkpoint does not fit this "
                            f"{self.config.model} ({image} and the rest must be the same)") from None
        progress = payload.get("progress", {})
        self.parent = {"run": str(Path(parent["path"]).resolve()), "checkpoint": parent["checkpoint"],
                       "step": progress.get("step"), "model": meta.get("model"),
                       "data": {k: meta.get("data", {}).get(k) for k in ("spec", "fingerprint")}}
        if self.grown_from:
            self.parent["grown_from"] = self.grown_from
            if self.world.is_main:
                kept = ", ".join(f"{a} of {b} {name} tensors" for name, (a, b) in taken.items()
                                 if not name.endswith("_ema"))
                print(f"growing {source} from {self.grown_from} to {min(self.config.size)} px: "
                      f"{kept} come from it, the rest start fresh", file=sys.stderr)

    def _grown_state(self, network: str, net: nn.Module,
                     smaller: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[int, int]]:
        """`net`'s state with the tensors of the smaller run's `network` that fit in it, and
        (how many came from it, how many there are)."""
        own = net.state_dict()
        size = min(self.config.size)
        moved = {self.family.grow_key(network, k, self.grown_from, size): v for k, v in smaller.items()}
        fit = {k: v for k, v in moved.items() if k in own and own[k].shape == v.shape}
        return {**own, **fit}, (len(fit), len(own))

    def _saved_total(self, payload: dict[str, Any]) -> int:
        """The step count of the config a checkpoint was saved with (checkpoints of 0.1.0 have no
        schedule horizon: theirs is the total they were started with)."""
        saved = payload.get("config", {})
        steps, epochs = saved.get("steps"), saved.get("epochs")
        total = steps or (epochs * self.steps_per_epoch if isinstance(epochs, int) else None)
        return max(1, total or self.total_steps)

    def save_checkpoint(self, name: str = "last") -> Path:
        """Write checkpoints/NAME.pt with everything needed to resume (rank 0 only)."""
        path = self.run_dir / "checkpoints" / f"{name}.pt"
        self._last_checkpoint_time = self.elapsed
        if not self.world.is_main:
            return path
        progress = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                    "elapsed": self.elapsed, "divergences": self.divergences,
                    "schedule_steps": self.updater.schedule_steps}
        return save_checkpoint(path, models=self._networks(),
                               step_state=self.updater.state_dict(), config=self.config.to_dict(),
                               progress=progress, device=self.device)

    # ----- sampling
    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None,
               calibration_images: int = CALIBRATION_IMAGES) -> torch.Tensor:
        """Images in [-1, 1] from latents, with the preview network (EMA when enabled, its batch
        statistics from `calibration_images` generated images), on CPU."""
        net = self.updater.image_network(calibration_images)
        was_training = net.training
        net.eval()
        out = []
        for i in range(0, len(z), 256):
            y = labels[i:i + 256].to(self.device) if labels is not None else None
            out.append(net(z[i:i + 256].to(self.device), y).float().cpu())
        net.train(was_training)
        return torch.cat(out)

    def preview(self) -> tuple[torch.Tensor, int]:
        """The preview grid's images and how many go in a row, laid out by runs.preview_layout
        (which the gallery reads too)."""
        cfg = self.config
        layout = preview_layout(self.kind, cfg.preview_count, self.model_config.num_classes,
                                cfg.resolution)
        images = preview_images(layout, self.preview_z, self.preview_sample,
                                real=self._real_images,
                                reconstruct=self.reconstruct)
        return images, layout["per_row"]

    def preview_sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """`sample` with the EMA's batch statistics as previews and health checks draw them."""
        return self.sample(z, labels, preview_calibration_images(self.config.batch_size))

    def _real_images(self, indices: list[int]) -> torch.Tensor:
        """Training images by index in [-1, 1] (wrapping round when the preview wants more)."""
        return from_uint8(self.data.images[torch.tensor(indices) % len(self.data)])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] passed through the encoder and the preview decoder, on CPU."""
        dec = self.updater.image_network(preview_calibration_images(self.config.batch_size))
        nets = {**self.models, self.kind.image_module: dec}
        for net in nets.values():
            net.eval()
        out = dec(self.kind.encode(nets, x.to(self.device), None), None).float().cpu()
        self.models.train()
        return out

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Send a record (step, epoch, values) to every callback's on_log (metrics.jsonl, TensorBoard)."""
        record = {"step": self.step, "epoch": self.epoch, **record}
        for cb in self.callbacks:
            cb.on_log(self, record)

    # ----- compilation
    def _compile(self) -> None:
        """torch.compile the training networks; the first steps fall back to eager on failure."""
        self._eager_networks = self.updater.networks()
        try:
            self.updater.wrap_networks(lambda net: torch.compile(net, **COMPILE_OPTIONS))
        except Exception as e:  # noqa: BLE001 - e.g. a Python version torch.compile does not support
            self._compile_failed(e)
            return
        # Compilation happens on first use; every path (D only, D and G) has run by step n_critic.
        self._compile_checks = (self.config.n_critic or 1) + 1

    def _compile_failed(self, error: BaseException) -> None:
        self.updater.set_networks(self._eager_networks)
        self._compile_checks = 0
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        msg = f"--compile failed ({type(error).__name__}: {reason}); training without it"
        tqdm.write(f"warning: {msg}", file=sys.stderr)

    def _snapshot(self) -> dict[str, Any]:
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        nets = {k: m.state_dict() for k, m in self._networks().items()}
        return copy.deepcopy({"models": nets, "step": self.updater.state_dict(), "rng": rng})

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One step; while compiled code is new, a failure restores the state and runs eagerly."""
        if not self._compile_checks:
            return self.updater(real, labels, self.step)
        self._compile_checks -= 1
        saved = self._snapshot()
        try:
            return self.updater(real, labels, self.step)
        except (torch.cuda.OutOfMemoryError, KeyboardInterrupt, UserError):
            raise
        except Exception as e:  # noqa: BLE001 - any compiler failure: keep training without it
            self._compile_failed(e)
            for name, net in self._networks().items():
                net.load_state_dict(saved["models"][name])
            self.updater.load_state_dict(saved["step"])
            torch.set_rng_state(saved["rng"]["cpu"])
            if "cuda" in saved["rng"]:
                torch.cuda.set_rng_state(saved["rng"]["cuda"], self.device)
            return self.updater(real, labels, self.step)

    # ----- loop
    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self._acc[k] = self._acc[k] + v if k in self._acc else v.clone()
            self._acc_n[k] = self._acc_n.get(k, 0) + 1

    def _flush(self, bar: tqdm, t_last: float, steps_since: int) -> str | None:
        """Log averaged losses (one host sync); what went wrong when training diverged, else None.

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
        problem = self._blowup(values)
        dt = max(time.perf_counter() - t_last, 1e-9)
        images = steps_since * self.loader.batch_size * self.world.size
        record = {**values, "time": round(self.elapsed, 3), "images_per_s": round(images / dt, 1)}
        self.log_metrics(record)
        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
        return problem

    def _blowup(self, values: dict[str, float]) -> str | None:
        """Why this log window's values mean divergence (non-finite, or finite but exploded), or
        None; a healthy window joins the running scale of each value."""
        for k, v in values.items():
            if not math.isfinite(v):
                return f"non-finite {k}"
            scale = self._scale.get(k)
            limit = BLOWUP_ABSOLUTE
            if scale and len(scale) >= 3:
                limit = min(limit, BLOWUP_RELATIVE * max(statistics.median(scale), 1.0))
            if abs(v) > limit:
                return f"{k} exploded to {v:.3g}"
        for k, v in values.items():
            self._scale.setdefault(k, deque(maxlen=BLOWUP_HISTORY)).append(abs(v))
        return None

    def _recover_from_divergence(self, problem: str = "non-finite loss") -> None:
        """Restore the last good checkpoint with halved learning rates, or give up."""
        self.divergences += 1
        if self.divergences > MAX_DIVERGENCE_RETRIES:
            raise UserError(f"training diverged ({problem} at step {self.step}) after "
                            f"{MAX_DIVERGENCE_RETRIES} restarts with halved learning rates; the last "
                            f"good checkpoint is in {self.run_dir / 'checkpoints'}; try a lower --lr, "
                            "--precision fp32, or --loss hinge")
        tries = self.divergences
        path = self.run_dir / "checkpoints" / "last.pt"
        where = "cpu" if self.world.distributed else self.device
        self._restore(distributed.on_main(lambda: load_checkpoint(path, where), self.world))
        self.divergences = tries
        self.updater.set_lr_scale(0.5 ** tries)
        msg = (f"{problem}: restored the last checkpoint (step {self.step}) and set the "
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
        if self.world.is_main:  # a process killed while writing left these
            for sub, names in TRAINER_FILES.items():
                atomic.remove_stale_temps(self.run_dir / sub, names)
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
        every = self.checkpoint_every
        while self.step < self.total_steps and not self._stop_requested:
            for real, labels in self.loader.batches(self.epoch, self.batch_in_epoch):
                self._accumulate(self._train_step(real, labels))
                self.step += 1
                self.batch_in_epoch += 1
                steps_since += 1
                bar.update(1)
                self.elapsed = time.perf_counter() - t0
                last = self.step >= self.total_steps or self._stop_requested  # fit() saves then
                by_steps = every.unit == "steps" and self.step % every.amount == 0
                # Also check at epoch end, the last step, on Ctrl-C and before a checkpoint:
                # never checkpoint NaN weights.
                if self.step % cfg.log_every == 0 or self.batch_in_epoch == len(self.loader) or \
                        last or by_steps:
                    problem = self._flush(bar, t_last, steps_since)
                    if problem:
                        self._recover_from_divergence(problem)
                        t0 = time.perf_counter() - self.elapsed
                        bar.n = self.step
                        break
                    t_last, steps_since = time.perf_counter(), 0
                    by_time = every.unit == "seconds" and \
                        self.elapsed - self._last_checkpoint_time >= every.amount
                    if (by_steps or by_time) and not last:  # rank 0 alone writes: no collective
                        self.save_checkpoint()
                for cb in self.callbacks:
                    cb.on_step(self)
                # At the epoch's last batch, fall through to the epoch end (previews, callbacks).
                if (self.step >= self.total_steps or self._stop_requested) and \
                        self.batch_in_epoch < len(self.loader):
                    break
            else:
                self.batch_in_epoch = 0
                self.epoch += 1
                for cb in self.callbacks:
                    cb.on_epoch_end(self)
                if every.unit == "epochs" and self.epoch % every.amount == 0:
                    self.save_checkpoint()
        if self._acc:
            self._flush(bar, t_last, max(steps_since, 1))
        self.interrupted = self._stop_requested
        if self._stop_requested:
            tqdm.write(f"interrupted at step {self.step}: checkpoint saved; continue with "
                       f"`latentstudio train --resume {self.continue_as}`", file=sys.stderr)


def _write_config(trainer: Trainer, extra: dict[str, Any]) -> None:
    data = trainer.data
    write_run_config(
        trainer.run_dir, model=trainer.config.model, kind=trainer.family.kind,
        config=trainer.config.to_dict(), model_config=dataclasses.asdict(trainer.model_config),
        data={"spec": trainer.config.data, "fingerprint": data.fingerprint(), "count": len(data),
              "resolution": data.resolution, "channels": data.channels,
              "class_names": data.class_names},
        resolved_precision=trainer.updater.precision,  # what --precision auto chose here
        **({"parent": trainer.parent} if trainer.parent else {}), **extra)


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None,
          callbacks: Sequence[Callback] = (), progress: bool = True,
          overrides: dict[str, Any] | None = None, raise_interrupt: bool = False) -> Path:
    """Train a new run from `config`, or continue the run folder `resume`; return the run folder.

    When resuming, `overrides` may raise `epochs`/`steps` (or change logging settings).
    Under torchrun each process calls this; a run resumes with any number of processes.
    Ctrl-C saves a checkpoint and returns, or with `raise_interrupt` raises `Interrupted` after
    saving (the command line then exits 130). A config with `grow_from` trains its smaller run
    first (train/grow.py); resuming such a run continues whichever stage it stopped in.
    """
    from latentstudio.train import grow

    if resume is not None:
        waiting = grow.waiting_config(Path(resume))
        if waiting is not None:
            return grow.train_grown(waiting, callbacks=callbacks, progress=progress,
                                    overrides=overrides, raise_interrupt=raise_interrupt,
                                    resume=True)
    elif config is not None and config.grow_from:
        return grow.train_grown(config, callbacks=callbacks, progress=progress,
                                raise_interrupt=raise_interrupt)
    return train_stage(config, resume=resume, callbacks=callbacks, progress=progress,
                       overrides=overrides, raise_interrupt=raise_interrupt)


def train_stage(config: TrainConfig | None = None, *, resume: str | Path | None = None,
                callbacks: Sequence[Callback] = (), progress: bool = True,
                overrides: dict[str, Any] | None = None, raise_interrupt: bool = False,
                continue_as: Path | None = None, meta: dict[str, Any] | None = None) -> Path:
    """`train` of one run folder, never a growth's two: `continue_as` is the run that
    `--resume` continues after Ctrl-C (default: this one), and a new run's config.json also
    holds `meta`."""
    world = distributed.setup()
    trainer = None
    try:
        if resume is not None:
            trainer = _resumed_trainer(Path(resume), callbacks, progress, overrides, world)
        else:
            trainer = _new_trainer(config, callbacks, progress, world, meta or {})
        trainer.continue_as = continue_as or trainer.run_dir
        run_dir = trainer.fit()
        if raise_interrupt and trainer.interrupted:
            raise Interrupted
        return run_dir
    except torch.cuda.OutOfMemoryError:  # while building; fit() explains its own
        raise UserError("out of GPU memory while loading the data and models; try a smaller "
                        "--data-limit, --resolution or --width (see `latentstudio estimate`)") from None
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        run = trainer.run_dir if trainer else Path(resume) if resume is not None else None
        raise UserError(disk_error_message(e, run)) from None
    finally:
        distributed.cleanup()


def disk_error_message(error: OSError, run_dir: Path | None) -> str:
    """One line for a write the disk refused: the folder, the cause, and how to go on
    (`run_dir` None: a new run that has not started)."""
    folder = Path(error.filename).parent if error.filename else run_dir
    cause = DISK_ERRORS.get(error.errno or 0, error.strerror)
    if run_dir is None:
        return f"cannot write to {folder}: {cause}; free space or choose another --out and start again"
    return (f"cannot write to {folder}: {cause}; the checkpoints already in "
            f"{run_dir / 'checkpoints'} are intact: free space or make the folder writable, then "
            f"continue with `latentstudio train --resume {run_dir}`")


def _with_overrides(meta: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """A run's settings with `overrides`; a new --epochs replaces the run's --steps. Channels
    left to the data are pinned to those the networks were built with (how a folder's channels
    are detected may have changed since, e.g. gray folders once loaded as RGB)."""
    config = dict(meta["config"])
    if config.get("channels") is None and isinstance(meta.get("model_config"), dict):
        config["channels"] = meta["model_config"].get("channels")
    overrides = dict(overrides or {})
    if "epochs" in overrides and "steps" not in overrides:
        overrides["steps"] = None
    return {**config, **overrides}


def resumed_config(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The settings `train --resume RUN` continues with (the run's, with `overrides`)."""
    from latentstudio.train.grow import waiting_config

    waiting = waiting_config(Path(run_dir))  # a run still in its smaller stage
    if waiting is not None:
        return TrainConfig.from_dict(_with_overrides({"config": waiting.to_dict()}, overrides))
    meta = read_run_config(Path(run_dir))
    return TrainConfig.from_dict(_with_overrides(meta, overrides))


def _resumed_trainer(run_dir: Path, callbacks: Sequence[Callback], progress: bool,
                     overrides: dict[str, Any] | None, world: World) -> Trainer:
    def read() -> tuple[dict[str, Any], dict[str, Any]]:
        return read_run_config(run_dir), load_checkpoint(run_dir / "checkpoints" / "last.pt")

    meta, payload = distributed.on_main(read, world)
    cfg = TrainConfig.from_dict(_with_overrides(meta, overrides))
    trainer = Trainer(cfg, run_dir, callbacks, progress, payload, world=world)
    asked = {k: overrides[k] for k in ("steps", "epochs") if overrides and overrides.get(k)}
    if asked and trainer.step >= trainer.total_steps:
        flag = " ".join(f"--{k} {v}" for k, v in asked.items())
        raise UserError(f"{run_dir} is already at step {trainer.step} (epoch {trainer.epoch}), "
                        f"which {flag} does not go beyond: ask for more, e.g. --epochs "
                        f"{trainer.epoch + 1} or --steps {trainer.step + 1}; nothing was changed")
    if world.is_main:
        if trainer.data.fingerprint() != meta["data"]["fingerprint"]:
            print(f"warning: the data behind {cfg.data!r} changed since this run started",
                  file=sys.stderr)
        if overrides:
            meta["config"] = trainer.config.to_dict()
            meta.pop("latentstudio_version", None)
            write_run_config(run_dir, **meta)
        logged = drop_metrics_after(run_dir, trainer.step)  # past the checkpoint: redone now
        redone = f"; the {logged - trainer.step} step(s) after it (to step {logged}) are redone" \
            if logged else ""
        print(f"resuming {run_dir} from its last checkpoint: step {trainer.step} of "
              f"{trainer.total_steps}, epoch {trainer.epoch} (batch {trainer.batch_in_epoch} of "
              f"{trainer.steps_per_epoch}){redone}", file=sys.stderr)
    return trainer


def load_parent(spec: str) -> dict[str, Any]:
    """The run `--init-from RUN[:CHECKPOINT]` names: its path, checkpoint name, config.json
    ("meta") and checkpoint ("payload")."""
    path, checkpoint = parse_init_from(spec)
    if not path.is_dir():
        raise UserError(f"--init-from {spec}: {path} is not a run folder")
    meta = read_run_config(path)
    payload = load_checkpoint(path / "checkpoints" / f"{checkpoint}.pt")
    return {"source": spec, "path": str(path), "checkpoint": checkpoint, "meta": meta,
            "payload": payload}


def check_new_run_dir(run_dir: Path) -> None:
    """A UserError unless a new run may be written into `run_dir`."""
    if (run_dir / "checkpoints" / "last.pt").exists() or (run_dir / "config.json").exists():
        raise UserError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                        "or choose another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder")


def _new_trainer(config: TrainConfig | None, callbacks: Sequence[Callback], progress: bool,
                 world: World = distributed.SINGLE, meta: dict[str, Any] | None = None) -> Trainer:
    cfg = config or TrainConfig()

    def choose_run_dir() -> Path:
        run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg.model, cfg.data, cfg.resolution)
        check_new_run_dir(run_dir)
        return run_dir

    run_dir = distributed.on_main(choose_run_dir, world)  # one name, even if clocks differ
    init = distributed.on_main(lambda: load_parent(cfg.init_from), world) if cfg.init_from else None
    # Build everything (and fail on bad settings) before anything is written.
    trainer = Trainer(dataclasses.replace(cfg, out=str(run_dir)), run_dir, callbacks, progress,
                      world=world, init=init)
    if world.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create run folder {run_dir}: {e.strerror}") from None
        _write_config(trainer, meta or {})
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
