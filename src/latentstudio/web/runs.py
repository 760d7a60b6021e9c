"""Reading run folders for the gallery: safe paths, summaries, metrics, grids and their layout.

Nothing here loads a model; a damaged or half-written run folder is described (status "damaged",
`problems`) instead of raising, so one bad folder never breaks the page.
"""

from __future__ import annotations

import html
import math
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageDraw

from latentstudio.data.base import parse_size, size_text
from latentstudio.errors import UserError
from latentstudio.metrics.evaluate import headline_scores
from latentstudio.models import get_kind
from latentstudio.runs import (
    export_source,
    preview_layout,
    read_meta,
    read_metrics,
    sample_grids,
    total_steps,
)
from latentstudio.runs.folder import grid_position
from latentstudio.runs.status import last_change, run_status

SERVED_SUFFIXES = {".png", ".gif", ".jpg", ".jpeg", ".webp", ".json", ".jsonl"}
_MAX_CURVE_POINTS = 400


def safe_name(name: str) -> bool:
    """True for a plain folder/file name: no separators, no NUL, not hidden, not `.`/`..`."""
    return (0 < len(name) <= 255 and not name.startswith(".") and "/" not in name
            and "\\" not in name and "\x00" not in name)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve(strict=True).is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return False


def resolve_run(root: Path, name: str) -> Path | None:
    """The run folder `root/name`, or None when the name is unsafe or it leaves `root`."""
    if not safe_name(name):
        return None
    path = root / name
    return path if path.is_dir() and _inside(path, root) else None


def resolve_file(root: Path, relpath: str) -> Path | None:
    """A servable file inside `root` (an image or JSON log), or None for anything else.

    Refused: absolute paths, empty/`.`/`..`/hidden segments (also temp files of atomic writes),
    backslashes and NUL, other suffixes (checkpoints are never served), and anything that
    resolves outside `root` through a symlink.
    """
    parts = relpath.split("/")
    if not relpath or relpath.startswith("/") or not all(safe_name(p) for p in parts):
        return None
    path = root.joinpath(*parts)
    if path.suffix.lower() not in SERVED_SUFFIXES or not _inside(path, root):
        return None
    return path if path.is_file() else None


def file_url(root: Path, path: Path) -> str:
    """The /files URL of a file inside root, with its mtime so browsers refetch changed files."""
    rel = path.relative_to(root).as_posix()
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        version = 0
    return f"/files/{quote(rel)}?v={version}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def latest_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """The newest value of each numeric metric (events and bookkeeping left out)."""
    out: dict[str, float] = {}
    for rec in reversed(records):
        for k, v in rec.items():
            if k not in out and k not in ("step", "epoch") and _is_number(v):
                out[k] = v
    return dict(sorted(out.items()))


def run_health(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The training health monitor's last word: {"state", "message"} (message None when the
    log holds none for that state), or None for runs logged without it."""
    for i in range(len(records) - 1, -1, -1):
        state = records[i].get("health")
        if isinstance(state, str):
            break
    else:
        return None
    message = None
    for rec in reversed(records[:i + 1]):
        if rec.get("health") != state:
            break
        if isinstance(rec.get("health_message"), str):
            message = rec["health_message"]
            break
    return {"state": state, "message": message}


def metric_curves(records: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    """Each loss-like metric as [[step, value], ...], thinned to a few hundred points."""
    curves: dict[str, list[list[float]]] = {}
    for rec in records:
        for k, v in rec.items():
            if k in ("step", "epoch", "time", "images_per_s", "d_won_steps") or not _is_number(v):
                continue
            curves.setdefault(k, []).append([rec["step"], v])
    for k, pts in curves.items():
        if len(pts) > _MAX_CURVE_POINTS:
            stride = math.ceil(len(pts) / _MAX_CURVE_POINTS)
            curves[k] = pts[::stride] + ([pts[-1]] if (len(pts) - 1) % stride else [])
    return curves


def grid_entry(root: Path, name: str, path: Path) -> dict[str, Any]:
    """A preview grid as the run page lists it: its name, the epoch or step it shows, its URL."""
    unit, n = grid_position(name) or ("step", 0)
    return {"name": name, "epoch": n if unit == "epoch" else None,
            "step": n if unit == "step" else None, "url": file_url(root, path)}


# ----- summaries
def summarize(root: Path, run_dir: Path, now: float | None = None) -> dict[str, Any]:
    """What the runs page shows for one folder; never raises for a damaged folder."""
    now = time.time() if now is None else now
    meta, problem = read_meta(run_dir)
    problems = [problem] if problem else []
    records, bad = read_metrics(run_dir)
    if bad:
        problems.append(f"{bad} unreadable line(s) in metrics.jsonl")
    grids = sample_grids(run_dir)
    updated = last_change(run_dir, [p for _, p in grids[-1:]])
    step = records[-1]["step"] if records else 0
    cfg = (meta or {}).get("config", {})
    total = total_steps(meta) if meta else None
    status = run_status(run_dir, meta, records, updated, now)
    return {
        "name": run_dir.name,
        "status": status,
        "problems": problems,
        "model": cfg.get("model"),
        "kind": (meta or {}).get("kind"),
        "data": cfg.get("data"),
        "resolution": cfg.get("resolution"),
        "step": step,
        "total_steps": total,
        "epoch": records[-1].get("epoch") if records else None,
        "health": run_health(records),
        "metrics": latest_metrics(records[-20:]),
        "scores": headline_scores(run_dir),
        "thumbnail": file_url(root, grids[-1][1]) if grids else None,
        "updated": updated,
        "created": (meta or {}).get("created"),
        "parent": lineage(root, meta),
        "grows_into": growth_target(root, meta),
    }


def lineage(root: Path, meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run a fine-tuned run started from (config.json's "parent"): its folder name, the
    name to link to when a run of that name is in this gallery (else None), the step, and the
    size it was grown from (None when not grown)."""
    parent = (meta or {}).get("parent")
    if not isinstance(parent, dict) or not isinstance(parent.get("run"), str):
        return None
    name = Path(parent["run"]).name
    step, grown = parent.get("step"), parent.get("grown_from")
    return {"name": name, "link": name if resolve_run(root, name) is not None else None,
            "step": step if isinstance(step, int) else None,
            "grown_from": grown if isinstance(grown, int) else None}


def growth_target(root: Path, meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run that `train --grow-from` grows this smaller run into (config.json's
    "grows_into"): its folder name, and the name to link to once it is in this gallery."""
    target = (meta or {}).get("grows_into")
    if not isinstance(target, dict) or not isinstance(target.get("run"), str):
        return None
    name = Path(target["run"]).name
    return {"name": name, "link": name if resolve_run(root, name) is not None else None}


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Summaries of every run folder directly under root (not exports), newest first."""
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    runs = []
    for name in entries:
        run_dir = resolve_run(root, name)
        if run_dir is None:
            continue
        summary = summarize(root, run_dir)
        # Only a folder without a run's config.json can be an export: runs are not read twice.
        if summary["status"] != "damaged" or export_source(run_dir) is None:
            runs.append(summary)
    return sorted(runs, key=lambda r: r["updated"], reverse=True)


# ----- first paint of the runs page (app.js's runCard draws the same cards, then takes over)
def _fmt(v: float) -> str:
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}"


def score_text(scores: list[dict[str, Any]]) -> str:
    """`KID (domain) 0.0123 · FID (domain) 4.56`, as the card shows it."""
    return " · ".join(f"{s['label']} {_fmt(s['value'])}" for s in scores)


def _card_html(r: dict[str, Any]) -> str:
    e = html.escape
    pct = min(100.0, 100 * r["step"] / r["total_steps"]) if r["total_steps"] else 0
    thumb = (f'<img class="pix" src="{e(r["thumbnail"])}" alt="latest samples of {e(r["name"])}">'
             if r["thumbnail"] else '<span class="muted small">no pictures yet</span>')
    meta = " · ".join(str(x) for x in (r["model"], r["data"],
                                       f"{r['resolution']} px" if r["resolution"] else None) if x)
    steps = f"step {r['step']}" + (f" / {r['total_steps']}" if r["total_steps"] else "")
    scores = (f'<div class="scores">{e(score_text(r["scores"]))}</div>' if r["scores"] else "")
    problems = (f'<div class="problems">{e("; ".join(r["problems"]))}</div>' if r["problems"] else "")
    parent = (f'<div class="meta lineage">{"grown " if r["parent"]["grown_from"] else ""}from '
              f'{e(r["parent"]["name"])}</div>' if r.get("parent") else
              f'<div class="meta lineage">grows into {e(r["grows_into"]["name"])}</div>'
              if r.get("grows_into") else "")
    health = r.get("health") or {}
    if health.get("state") not in (None, "ok"):
        text = HEALTH_WORDS.get(health["state"], health["state"])
        problems = (f'<div class="health {e(health["state"])}" title="{e(health.get("message") or "")}">'
                    f'{e(text)}</div>') + problems
    status = e(r["status"])
    return (f'<a class="card" href="#/run/{quote(r["name"])}" data-run="{e(r["name"])}">'
            f'<div class="thumb">{thumb}</div><div class="body">'
            f'<div class="name">{e(r["name"])}<span class="badge {status.replace(" ", "-")}" '
            f'data-status="{status}">{status}</span></div>'
            f'<div class="meta">{e(meta)}</div>{parent}'
            f'<div class="progress"><div style="width:{pct:.1f}%"></div></div>'
            f'<div class="meta">{e(steps)}</div>{scores}{problems}</div></a>')


HEALTH_WORDS = {"collapse": "samples all alike (mode collapse)", "d_won": "discriminator has won",
                "ema_warming": "EMA still warming up"}  # as app.js's HEALTH_WORDS


def runs_page_html(root: Path) -> str:
    """The runs page as HTML, so it shows before (and without) JavaScript."""
    listed = list_runs(root)
    head = (f'<div class="pagehead"><h1>Runs</h1><div class="meta" id="root">'
            f'{len(listed)} run(s) in {html.escape(str(root))}</div></div>')
    if not listed:
        return head + ('<div class="cards" id="cards"><div class="empty">No runs here yet. Train '
                       'one with <code>latentstudio demo</code>.</div></div>')
    return head + '<div class="cards" id="cards">' + "".join(map(_card_html, listed)) + "</div>"


# ----- preview grid layout
def grid_layout(meta: dict[str, Any]) -> dict[str, Any]:
    """The layout of a run's preview grids (runs.preview_layout, as the trainer drew them)."""
    cfg, mc = meta["config"], meta.get("model_config", {})
    try:
        kind = get_kind(meta.get("kind", "gan"))
    except UserError as e:  # a plugin's kind that is not installed here
        raise ValueError(str(e)) from None
    try:
        size = parse_size(cfg.get("resolution", 32))
    except UserError as e:
        raise ValueError(str(e)) from None
    return preview_layout(kind, int(cfg.get("preview_count", 16)), int(mc.get("num_classes") or 0),
                          size_text(*size))


def crop_cell(grid_path: Path, layout: dict[str, Any], index: int) -> Image.Image | None:
    """Cell `index` (reading order, as make_grid tiles) of a preview grid as a picture, or None
    when the index is out of range or the grid's size does not fit the layout."""
    per_row, cell, pad = layout["per_row"], layout["cell"], layout["padding"]
    cell_h = layout.get("cell_height", cell)
    n = len(layout["cells"])
    if not 0 <= index < n:
        return None
    rows = math.ceil(n / per_row)
    try:
        with Image.open(grid_path) as im:
            if im.size != (per_row * (cell + pad) + pad, rows * (cell_h + pad) + pad):
                return None
            r, c = divmod(index, per_row)
            x, y = pad + c * (cell + pad), pad + r * (cell_h + pad)
            return im.crop((x, y, x + cell, y + cell_h)).copy()
    except OSError:
        return None


ROW_NAMES = {"real": "real", "recon": "reconstruction", "sample": "sample"}


def row_labels(layout: dict[str, Any]) -> list[str]:
    """What each row of a preview grid shows ("real", "reconstruction", "sample"), top down."""
    per_row, cells = layout["per_row"], layout["cells"]
    return [ROW_NAMES.get(cells[i]["kind"], cells[i]["kind"]) for i in range(0, len(cells), per_row)]


def labelled_grid(grid_path: Path, layout: dict[str, Any]) -> Image.Image | None:
    """A copy of a preview grid with each row's name written to its left, enlarged (nearest) so
    that a cell is at least 64 px; None when the grid's size does not fit the layout. The grid
    file itself keeps its layout: the gallery cuts cells out of it."""
    per_row, cell, pad = layout["per_row"], layout["cell"], layout["padding"]
    cell_h = layout.get("cell_height", cell)
    labels = row_labels(layout)
    try:
        with Image.open(grid_path) as im:
            grid = im.convert("RGB")
    except OSError:
        return None
    if grid.size != (per_row * (cell + pad) + pad, len(labels) * (cell_h + pad) + pad):
        return None
    scale = max(1, math.ceil(64 / min(cell, cell_h)))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
    margin = 110
    out = Image.new("RGB", (grid.width + margin, grid.height), "white")
    out.paste(grid, (margin, 0))
    draw = ImageDraw.Draw(out)
    for r, label in enumerate(labels):
        y = (pad + r * (cell_h + pad) + cell_h / 2) * scale
        draw.text((margin - 6, y), label, fill="black", anchor="rm")
    return out
