"""config.json, metrics.jsonl and the preview grids of a run folder: names, writing and reading."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from latentstudio import __version__, atomic
from latentstudio.errors import UserError

_GRID_FILE = re.compile(r"^(epoch|step)_(\d+)\.png$")


def default_run_dir(model: str, data: str, resolution: int | str) -> Path:
    """runs/MODEL-DATA-RESpx-TIMESTAMP (RES: 64, or 64x128 for non-square runs)."""
    name = Path(data).name if ":" not in data else data.replace(":", "-")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{model}-{name}-{resolution}px-{stamp}"


def write_run_config(run_dir: Path, *, model: str, kind: str, config: dict[str, Any],
                     model_config: dict[str, Any], data: dict[str, Any],
                     created: str | None = None, **extra: Any) -> Path:
    """Write config.json: the settings, the networks' shapes and the data a run trains on.

    `data` holds spec, fingerprint, count, resolution, channels and class_names; `extra`
    keys are stored beside them.
    """
    return atomic.write_json(Path(run_dir) / "config.json", {
        "latentstudio_version": __version__,
        "model": model,
        "kind": kind,
        "config": config,
        "model_config": model_config,
        "data": data,
        "created": created or datetime.now().isoformat(timespec="seconds"),
        **extra,
    })


def read_meta(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(config.json contents, None), or (None, what is wrong with it); never raises."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return None, "no config.json (not a run, or one that is just starting)"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
            raise ValueError
        meta["config"]["model"]
        return meta, None
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None, "config.json is damaged or half-written"


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run folder, or a UserError saying the folder is not a run."""
    meta, problem = read_meta(Path(run_dir))
    if meta is None:
        if not (Path(run_dir) / "config.json").exists():
            raise UserError(f"{run_dir} is not a latentstudio run folder (no config.json)")
        _refuse_export(Path(run_dir))
        raise UserError(f"{Path(run_dir) / 'config.json'} is damaged or not a latentstudio config")
    return meta


def export_source(folder: Path) -> str | None:
    """When `folder` holds a `latentstudio export` rather than a run: the run it came from
    ("" when unknown); else None."""
    try:
        meta = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or "export_format" not in meta:
        return None
    training = meta.get("training")
    source = training.get("run") if isinstance(training, dict) else None
    return source if isinstance(source, str) else ""


def _refuse_export(folder: Path) -> None:
    """A UserError when `folder` holds a `latentstudio export` rather than a run."""
    source = export_source(folder)
    if source is not None:
        raise UserError(f"{folder} is an exported model, not a run folder: load it in Python with "
                        f"latentstudio.load('{folder}'), or give this command the run it came from"
                        + (f" ({source})" if source else ""))


def total_steps(meta: dict[str, Any]) -> int | None:
    """The step count the run is configured to reach."""
    cfg = meta.get("config", {})
    if isinstance(cfg.get("steps"), int):
        return cfg["steps"]
    data = meta.get("data")
    count = data.get("count") if isinstance(data, dict) else None
    batch, epochs = cfg.get("batch_size"), cfg.get("epochs")
    if all(isinstance(v, int) and v > 0 for v in (count, batch, epochs)):
        return epochs * (count // min(batch, count))
    return None


def finite_or_null(record: dict[str, Any]) -> dict[str, Any]:
    """A metrics record with every non-finite number as None (null in JSON)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


def metrics_line(record: dict[str, Any]) -> str:
    """One line of metrics.jsonl: strict JSON, a non-finite number written as null."""
    return json.dumps(finite_or_null(record), allow_nan=False, default=str) + "\n"


def drop_metrics_after(run_dir: Path, step: int) -> int | None:
    """Remove the records of metrics.jsonl logged after `step` (and a half-written last line),
    rewriting it atomically; the last step it removed, or None. A resumed run redoes those."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    keep, last = [], None
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            continue
        if rec["step"] <= step:
            keep.append(line)
        else:
            last = max(rec["step"], last or 0)
    if len(keep) < len(lines):
        atomic.write_text(path, "".join(line + "\n" for line in keep))
    return last


@lru_cache(maxsize=64)
def _parse_metrics(path: str, mtime_ns: int, size: int) -> tuple[tuple[dict[str, Any], ...], int]:
    records, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                bad += 1  # typically the last line of a log being written right now
                continue
            if isinstance(rec, dict) and isinstance(rec.get("step"), int):
                # Logs of 0.1.0 hold bare NaN/Infinity: None, as null in the logs written now.
                records.append(finite_or_null(rec))
            else:
                bad += 1
    return tuple(records), bad


def read_metrics(run_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """(records of metrics.jsonl, number of unreadable lines); cached until the file changes.

    A value that did not stay finite (written as null) is None.
    """
    path = Path(run_dir) / "metrics.jsonl"
    try:
        st = path.stat()
    except OSError:
        return [], 0
    try:
        records, bad = _parse_metrics(str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return [], 1
    return list(records), bad


def grid_position(name: str) -> tuple[str, int] | None:
    """("epoch", N) or ("step", N) for a preview grid's name (`epoch_0003`, `step_000500`, with
    or without .png), or None for another name."""
    m = _GRID_FILE.match(name if name.endswith(".png") else name + ".png")
    return (m.group(1), int(m.group(2))) if m else None


def sample_grids(run_dir: Path) -> list[tuple[str, Path]]:
    """(name, path) of the preview grids, oldest first: samples/step_NNNNNN.png and
    samples/epoch_NNNN.png (runs of earlier versions, and --preview-every in epochs); the name is the file's
    without .png."""
    samples = Path(run_dir) / "samples"
    try:
        names = os.listdir(samples)
    except OSError:
        return []
    found = []
    for n in names:
        pos = grid_position(n)
        if pos and (samples / n).is_file():
            found.append((pos, samples / n))
    per_epoch = 0  # steps per epoch, to place epoch grids among step grids
    if len({unit for (unit, _), _ in found}) > 1:  # a run whose preview cadence changed
        meta, _ = read_meta(Path(run_dir))
        count = ((meta or {}).get("data") or {}).get("count")
        batch = (meta or {}).get("config", {}).get("batch_size")
        if isinstance(count, int) and isinstance(batch, int) and count > 0 and batch > 0:
            per_epoch = count // min(batch, count)

    def order(item: tuple[tuple[str, int], Path]) -> tuple[int, bool, int]:
        (unit, n), _ = item
        return (n * per_epoch if unit == "epoch" else n, unit == "step", n)

    return [(p.stem, p) for _, p in sorted(found, key=order)]
