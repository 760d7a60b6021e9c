"""Where a run stands (training, finished, interrupted, diverged...), from its folder alone.

One definition for every reader: the gallery's cards and the `runs` table show the same word.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from latentstudio.runs.folder import total_steps

ACTIVE_SECONDS = 90  # a run whose files changed this recently is shown as training
_BOOKKEEPING = {"step", "epoch", "time", "images_per_s"}
STATUSES = ("training", "finished", "interrupted", "diverged", "no checkpoint", "damaged")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _diverged(records: list[dict[str, Any]]) -> bool:
    """The last logged losses are not finite (the trainer gives up after repeated NaN/inf);
    written as bare NaN by 0.1.0 and as null since."""
    for rec in reversed(records):
        values = [v for k, v in rec.items() if k not in _BOOKKEEPING and
                  (v is None or isinstance(v, (int, float)) and not isinstance(v, bool))]
        if values:  # skip event-only records (the trainer's restore notes)
            return not all(v is not None and math.isfinite(v) for v in values)
    return False


def last_change(run_dir: Path, extra: list[Path] = ()) -> float:
    """When the run's log, last checkpoint or folder (or `extra` files) last changed."""
    return max([_mtime(run_dir / "metrics.jsonl"), _mtime(run_dir / "checkpoints" / "last.pt"),
                _mtime(run_dir)] + [_mtime(p) for p in extra])


def run_status(run_dir: Path, meta: dict[str, Any] | None, records: list[dict[str, Any]],
               updated: float | None = None, now: float | None = None) -> str:
    """One of STATUSES for a run folder, given its config.json (`meta`) and metrics.jsonl."""
    now = time.time() if now is None else now
    updated = last_change(run_dir) if updated is None else updated
    step = records[-1]["step"] if records else 0
    total = total_steps(meta) if meta else None
    if meta is None:
        return "damaged"
    if _diverged(records):
        return "diverged"
    if now - updated < ACTIVE_SECONDS and (total is None or step < total):
        return "training"
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        return "no checkpoint"
    if total is not None and step < total and records:
        return "interrupted"
    return "finished"
