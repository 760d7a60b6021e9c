"""Callbacks the loop calls at fixed points; RunWriter fills the run folder.

RunWriter writes metrics.jsonl, TensorBoard events (tb/, with the tensorboard extra), preview grids from fixed latents,
progress.gif and losses.png. Grids are named by the step they show (samples/step_NNNNNN.png),
or by the epoch (samples/epoch_NNNN.png) when --preview-every counts epochs, as in earlier versions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from latentstudio import atomic
from latentstudio.images import make_grid, save_gif, save_png
from latentstudio.runs import metrics_line, read_metrics, sample_grids
from latentstudio.train.config import parse_every

if TYPE_CHECKING:
    from latentstudio.train.loop import Trainer


class Callback:
    """Override what you need; every hook receives the trainer."""

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None: ...

    def on_step(self, trainer: Trainer) -> None:
        """After every step (keep it cheap: no host syncs)."""

    def on_epoch_end(self, trainer: Trainer) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


class RunWriter(Callback):
    """Writes the run folder's logs, grids, GIF and loss plot."""

    def __init__(self) -> None:
        self._tb = None
        self._last_preview_step = -1
        self._last_preview_time = 0.0

    def on_train_start(self, trainer: Trainer) -> None:
        (trainer.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(trainer.run_dir / "tb"))
        except ImportError:  # an extra: metrics.jsonl, losses.png and the gallery show the same
            print(f"note: no TensorBoard logs in {trainer.run_dir / 'tb'} (pip install "
                  "'latentstudio[tensorboard]' to write them)", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - TensorBoard is a nicety; never stop training for it
            print(f"warning: TensorBoard logging disabled ({e})", file=sys.stderr)
        self._every = parse_every(trainer.config.preview_every, "--preview-every")
        self._last_preview_time = trainer.elapsed
        if trainer.step == 0:
            self._preview(trainer, 0)

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        with open(trainer.run_dir / "metrics.jsonl", "a") as f:
            f.write(metrics_line(record))
        if self._tb is not None:
            for k, v in record.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, record["step"])

    def on_step(self, trainer: Trainer) -> None:
        every = self._every
        if every.unit == "steps" and trainer.step % every.amount == 0 or \
                every.unit == "seconds" and trainer.elapsed - self._last_preview_time >= every.amount:
            self._preview(trainer, trainer.epoch)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self._every.unit == "epochs" and trainer.epoch % self._every.amount == 0:
            self._preview(trainer, trainer.epoch)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._last_preview_step != trainer.step:
            self._preview(trainer, trainer.epoch + (1 if trainer.batch_in_epoch else 0))
        if self._tb is not None:
            self._tb.close()

    def _preview(self, trainer: Trainer, epoch: int) -> None:
        """Write the grid, named by `epoch` when previews count epochs, else by the step."""
        images, per_row = trainer.preview()
        grid = make_grid(images, nrow=per_row)
        name = f"epoch_{epoch:04d}.png" if self._every.unit == "epochs" else \
            f"step_{trainer.step:06d}.png"
        save_png(grid, trainer.run_dir / "samples" / name)
        self._last_preview_step = trainer.step
        self._last_preview_time = trainer.elapsed
        if self._tb is not None:
            import numpy as np

            self._tb.add_image("samples", np.asarray(grid.convert("RGB")), trainer.step,
                               dataformats="HWC")
        write_progress_gif(trainer.run_dir)
        write_loss_plot(trainer.run_dir)


def write_progress_gif(run_dir: Path, max_frames: int = 100) -> Path | None:
    """progress.gif from the preview grids in samples/, oldest first (holding on the last)."""
    paths = [p for _, p in sample_grids(run_dir)]
    if not paths:
        return None
    step = max(1, len(paths) // max_frames)
    chosen = paths[::step]
    if chosen[-1] != paths[-1]:
        chosen.append(paths[-1])
    frames = []
    for p in chosen:
        with Image.open(p) as im:
            frames.append(im.convert("RGB"))
    frames += [frames[-1]] * 3
    return save_gif(frames, run_dir / "progress.gif", fps=4)


def write_loss_plot(run_dir: Path) -> Path | None:
    """losses.png: each logged loss against the step."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for rec in read_metrics(run_dir)[0]:
        for k, v in rec.items():
            if (k.startswith("loss") or k in ("recon", "kl", "gp", "d_real", "d_fake")) and \
                    isinstance(v, (int, float)):
                xs, ys = series.setdefault(k, ([], []))
                xs.append(rec["step"])
                ys.append(v)
    if not series:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for k, (xs, ys) in sorted(series.items()):
        ax.plot(xs, ys, label=k, linewidth=1)
    ax.set_xlabel("step")
    ax.set_title(run_dir.name)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic.write_bytes(run_dir / "losses.png", buf.getvalue())
