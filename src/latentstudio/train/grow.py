"""`train --grow-from SIDE`: a run at the smaller size first, in a run folder of its own beside
the asked one (OUT-SIDEpx), then that run grown to --resolution in OUT, as `--init-from` grows
a run (README, "Grow a run to a larger size"). The smaller run's config.json says which run it
grows into, so `train --resume OUT` continues whichever of the two stopped."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentstudio.data.base import size_text
from latentstudio.errors import UserError
from latentstudio.models import get_family
from latentstudio.runs import (
    default_run_dir,
    load_checkpoint,
    read_meta,
    total_steps,
    write_run_config,
)
from latentstudio.train import distributed
from latentstudio.train.callbacks import Callback
from latentstudio.train.config import TrainConfig, resolve_config

BOTH_STARTS = "--grow-from and --init-from both say where the run starts: give one"
GROWS_INTO = "grows_into"  # config.json of the smaller run: {"run": OUT, "config": OUT's settings}
# What `--resume OUT` may change in the smaller run while it trains (its length is --grow-steps).
STAGE_OVERRIDES = ("log_every", "preview_every", "checkpoint_every", "device")


def smaller_size(cfg: TrainConfig) -> int | str:
    """The --resolution of the first stage: the asked size scaled down to --grow-from on its
    shorter side; a UserError when that is no size to grow from."""
    family = get_family(cfg.model)
    if family.grow is None:
        able = ", ".join(sorted(_growing_families()))
        raise UserError(f"--grow-from: {cfg.model} cannot grow a run; --model {able} can")
    width, height = cfg.size
    side = int(cfg.grow_from or 0)
    short = min(width, height)
    factor = short // side if 0 < side < short else 0
    if not factor or short % side or factor & (factor - 1) or width % factor or height % factor:
        raise UserError(f"--grow-from {side}: it must be --resolution's shorter side ({short}) "
                        f"halved one or more times, e.g. --grow-from {max(short // 4, 1)}")
    if family.check_size is not None:
        try:
            family.check_size(width // factor, height // factor)
        except UserError as e:
            raise UserError(f"--grow-from {side}: {e}") from None
    text = size_text(width // factor, height // factor)
    return int(text) if text.isdigit() else text


def _growing_families() -> list[str]:
    from latentstudio.models import all_families

    return [f.name for f in all_families() if f.grow is not None]


def first_stage_dir(run_dir: Path, size: int | str) -> Path:
    """The smaller run's folder beside `run_dir`: runs/emoji256 -> runs/emoji256-64px."""
    return run_dir.with_name(f"{run_dir.name}-{size}px")


def first_stage_config(cfg: TrainConfig, run_dir: Path) -> TrainConfig:
    """The settings of the smaller run: the asked ones at the smaller size, --grow-steps long."""
    size = smaller_size(cfg)
    return dataclasses.replace(
        cfg, resolution=size, out=str(first_stage_dir(run_dir, size)), steps=cfg.grow_steps,
        epochs=None, batch_size=cfg.grow_batch_size or cfg.batch_size, init_from=None,
        grow_from=None, grow_batch_size=None)


def waiting_config(run_dir: Path) -> TrainConfig | None:
    """The settings of a run that is still in its first stage (`run_dir` holds no run yet and
    a smaller run beside it grows into it), else None."""
    if (run_dir / "config.json").exists() or not run_dir.parent.is_dir():
        return None
    for candidate in sorted(run_dir.parent.glob(f"{run_dir.name}-*px")):
        meta, _ = read_meta(candidate)
        stage = (meta or {}).get(GROWS_INTO)
        if isinstance(stage, dict) and isinstance(stage.get("config"), dict) \
                and Path(str(stage.get("run"))).name == run_dir.name:
            return dataclasses.replace(TrainConfig.from_dict(stage["config"]), out=str(run_dir))
    return None


def train_grown(cfg: TrainConfig, *, callbacks: Sequence[Callback] = (), progress: bool = True,
                overrides: dict[str, Any] | None = None, raise_interrupt: bool = False,
                resume: bool = False) -> Path:
    """Train the smaller run (or continue it, `resume`), then grow it into the asked run;
    return the asked run's folder (the smaller one's when Ctrl-C stopped it)."""
    from latentstudio.train.loop import check_new_run_dir, train_stage

    if distributed.world_from_env().size > 1:
        raise UserError("--grow-from trains in one process: train the smaller run with --gpus, "
                        "then grow it with --init-from (README, \"Grow a run to a larger size\")")
    if cfg.init_from:
        raise UserError(BOTH_STARTS)
    resolve_config(cfg, get_family(cfg.model))  # bad settings fail before anything trains
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg.model, cfg.data, cfg.resolution)
    check_new_run_dir(run_dir)
    changes = dict(overrides or {}) if resume else {}
    if "epochs" in changes and "steps" not in changes:  # as a resume's --epochs does
        changes["steps"] = None
    cfg = dataclasses.replace(cfg, **changes, out=str(run_dir))
    first = first_stage_config(cfg, run_dir)
    first_dir = Path(first.out or "")
    stage = {GROWS_INTO: {"run": str(run_dir), "config": cfg.to_dict()}}
    ended = _StageEnd()
    meta, _ = read_meta(first_dir)
    if meta is None:
        if first_dir.exists() and any(first_dir.iterdir()):
            raise UserError(f"{first_dir} (where the {first.resolution} px stage trains) is not "
                            "empty: move it or choose another --out")
        print(f"training at {first.resolution} px for {first.steps} steps in {first_dir}, then "
              f"growing it to {size_text(*cfg.size)} px in {run_dir}", file=sys.stderr)
        train_stage(first, callbacks=[*callbacks, ended], progress=progress,
                    raise_interrupt=raise_interrupt, continue_as=run_dir, meta=stage)
        finished = ended.finished
    elif GROWS_INTO not in meta:
        raise UserError(f"{first_dir} (where the {first.resolution} px stage trains) holds "
                        "another run: move it or choose another --out")
    elif not resume:
        raise UserError(f"{first_dir} already holds this run's first stage: continue with "
                        f"--resume {run_dir}, or choose another --out")
    else:
        if overrides and meta[GROWS_INTO]["config"] != stage[GROWS_INTO]["config"]:
            meta.update(stage)  # a later --steps is the grown run's: say so for the next resume
            meta.pop("latentstudio_version", None)
            write_run_config(first_dir, **meta)
        finished = _finished(first_dir, meta)
        if not finished:
            kept = {k: v for k, v in (overrides or {}).items() if k in STAGE_OVERRIDES}
            train_stage(resume=first_dir, callbacks=[*callbacks, ended], progress=progress,
                        overrides=kept, raise_interrupt=raise_interrupt, continue_as=run_dir)
            finished = ended.finished
    if not finished:  # stopped (Ctrl-C) before its end: nothing to grow yet
        return first_dir
    return train_stage(dataclasses.replace(cfg, init_from=str(first_dir)), callbacks=callbacks,
                       progress=progress, raise_interrupt=raise_interrupt)


class _StageEnd(Callback):
    """Whether the run it watched reached its end (Ctrl-C stops one before)."""

    finished = False

    def on_train_end(self, trainer: Any) -> None:
        self.finished = not trainer.interrupted


def _finished(first_dir: Path, meta: dict[str, Any]) -> bool:
    """Whether the smaller run (config.json `meta`) reached its --grow-steps, by its last
    checkpoint."""
    payload = load_checkpoint(first_dir / "checkpoints" / "last.pt")
    return payload["progress"]["step"] >= (total_steps(meta) or 0)
