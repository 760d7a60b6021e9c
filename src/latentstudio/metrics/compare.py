"""Comparing runs side by side (`latentstudio runs`): one row per run folder with its
hyper-parameters, progress and latest metrics; as a terminal table, Markdown or CSV.

Hyper-parameters that differ between the listed runs are highlighted (bold in Markdown, colour
or a `*` in the terminal), because those are the knobs an experiment turned. A folder whose
files cannot be read is listed as corrupt rather than stopping the listing.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentstudio.errors import UserError
from latentstudio.metrics.evaluate import DISPLAY_NAMES, PIXEL_VALUES, metric_label, read_eval_json
from latentstudio.metrics.extractors import EXTRACTORS
from latentstudio.runs import export_source, read_metrics
from latentstudio.runs.status import run_status

FIXED = ["model", "data", "resolution"]
KEY_HYPERPARAMS = ["latent_dim", "batch_size", "lr", "epochs"]
# Config fields that differ between runs without changing what is learnt.
NOT_HYPERPARAMS = {"out", "device", "compile", "preview_every", "preview_count",
                   "checkpoint_every", "log_every", "extra"}
LOG_FIELDS = {"step", "epoch", "time", "images_per_s"}


@dataclass
class RunRow:
    """What a run folder says about itself; `error` is set when it could not be read."""

    name: str
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    wall_seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    status: str | None = None


def looks_like_run(path: Path) -> bool:
    """A folder shown as a row: a run, or what is left of one (a log or checkpoints alone);
    not a `latentstudio export`."""
    return any((path / f).exists() for f in ("config.json", "metrics.jsonl", "checkpoints")) \
        and export_source(path) is None


def _read_log(run_dir: Path, row: RunRow) -> list[dict[str, Any]]:
    """Latest value of every logged number, last step, and wall time from metrics.jsonl."""
    records, _ = read_metrics(run_dir)
    for entry in records:
        row.steps = entry["step"]
        if isinstance(entry.get("time"), (int, float)):
            row.wall_seconds = float(entry["time"])  # the trainer logs seconds of training so far
        for key, value in entry.items():
            if key not in LOG_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
                # `eval/fid_lite0` from --eval-every and `fid_lite0` from eval.json: one column.
                row.metrics[key.removeprefix("eval/")] = float(value)
    return records


def read_run(path: Path, name: str | None = None) -> RunRow:
    """One run folder as a row (never raises for bad files: sets `error` instead)."""
    row = RunRow(name or path.name, path)
    try:
        meta = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        row.error = "no config.json"
        return row
    except (ValueError, UnicodeDecodeError):
        row.error = "config.json is not valid JSON"
        return row
    except OSError as e:
        row.error = f"config.json unreadable ({e.strerror})"
        return row
    config = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(config, dict):
        row.error = "config.json holds no settings"
        return row
    row.config = config
    row.status = run_status(path, meta, _read_log(path, row))
    try:
        row.metrics.update({k: float(v) for k, v in read_eval_json(path).get("metrics", {}).items()})
    except (ValueError, AttributeError, TypeError):
        pass  # a broken evaluation: the log's values still show
    row.labels = {k: _label(k) for k in row.metrics}
    return row


def _label(key: str) -> str:
    """`fid_lite0` -> `FID (lite0)`; other keys (losses) as they are."""
    if key in PIXEL_VALUES:
        return metric_label(key, "")
    name, _, extractor = key.rpartition("_")
    if name in DISPLAY_NAMES and extractor in EXTRACTORS:
        return metric_label(name, extractor)
    return key


def collect_runs(root: str | Path) -> list[RunRow]:
    """Rows for the run folders in `root` (one level down, or two for grouped runs)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"no runs folder at {root}: pass the folder that holds your runs")
    if looks_like_run(root):
        return [read_run(root)]
    rows = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if looks_like_run(child):
            rows.append(read_run(child))
        else:
            rows += [read_run(g, f"{child.name}/{g.name}") for g in sorted(child.iterdir())
                     if g.is_dir() and looks_like_run(g)]
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value)
    return str(value)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Table:
    """Column keys and headers, raw cell values per row, and which columns differ."""

    keys: list[str]
    headers: list[str]
    rows: list[dict[str, Any]]
    differing: set[str]
    settings: set[str] = field(default_factory=set)
    sorted_by: str | None = None

    def text(self, row: dict[str, Any], key: str) -> str:
        """A cell as shown: durations readable, unset settings as '-'."""
        value = row.get(key)
        if key == "wall":
            return format_duration(value)
        if value is None and key in self.settings and "note" not in row:
            return "-"
        return _fmt(value)


def _metric_order(key: str) -> tuple[int, str]:
    """Evaluation values first, in DISPLAY_NAMES order, then losses alphabetically."""
    name = key if key in PIXEL_VALUES else key.rpartition("_")[0]
    return (list(DISPLAY_NAMES).index(name) if name in DISPLAY_NAMES else len(DISPLAY_NAMES), key)


def build_table(runs: list[RunRow], sort: str | None = None, reverse: bool = False) -> Table:
    """The table's columns and rows: fixed fields, hyper-parameters (key ones plus any that
    differ), the step reached, wall time, then metrics; sorted by column `sort` (missing last)."""
    good = [r for r in runs if r.error is None]
    config_keys: list[str] = []
    for r in good:
        config_keys += [k for k in r.config if k not in config_keys]
    differing = {k for k in config_keys if k not in NOT_HYPERPARAMS
                 and len({_hashable(r.config.get(k)) for r in good}) > 1}
    hyper = [k for k in KEY_HYPERPARAMS if any(k in r.config for r in good)]
    hyper += [k for k in config_keys if k in differing and k not in hyper and k not in FIXED]
    metric_keys = sorted({k for r in good for k in r.metrics}, key=_metric_order)
    labels = {k: v for r in good for k, v in r.labels.items()}
    keys = ["name", "status", *FIXED, *hyper, "step", "wall", *metric_keys]
    headers = ["name", "status", "model", "data", "res", *hyper, "step", "wall",
               *[labels.get(k, k) for k in metric_keys]]
    if any(r.error for r in runs):
        keys.append("note")
        headers.append("note")
    rows = []
    for r in runs:
        cells: dict[str, Any] = {"name": r.name}
        if r.error:
            cells.update(note=f"corrupt: {r.error}", status="damaged")
        else:
            cells.update({k: r.config.get(k) for k in FIXED + hyper})
            cells.update(r.metrics)
            cells.update(step=r.steps, wall=r.wall_seconds, status=r.status)
        rows.append(cells)
    if sort and sort not in keys and sort in DISPLAY_NAMES:
        sort = _common_key(sort, keys, rows)
    if sort:
        if sort not in keys:
            raise UserError(f"cannot sort by {sort!r}: use one of {', '.join(keys)}")
        present = [c for c in rows if c.get(sort) is not None and "note" not in c]
        chosen = {id(c) for c in present}
        missing = [c for c in rows if id(c) not in chosen]
        numeric = all(isinstance(c[sort], (int, float)) for c in present)
        present.sort(key=lambda c: c[sort] if numeric else str(c[sort]), reverse=reverse)
        rows = present + missing
    return Table(keys, headers, rows, differing, set(FIXED + hyper), sort)


def _common_key(name: str, keys: list[str], rows: list[dict[str, Any]]) -> str:
    """`fid` -> the `fid_EXTRACTOR` column most runs have: scores from different extractors are
    on different scales, so runs are only ever ordered by one of them."""
    candidates = [k for k in keys if k.rpartition("_")[0] == name]
    if not candidates:
        raise UserError(f"cannot sort by {name!r}: no run has a {DISPLAY_NAMES[name]} value yet "
                        "(run `latentstudio eval RUN` first)")
    return max(candidates, key=lambda k: sum(r.get(k) is not None for r in rows))


def to_csv(table: Table) -> str:
    """Plain CSV: raw values (wall time in seconds), headers as shown."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow(["" if row.get(k) is None else _fmt(row.get(k)) for k in table.keys])
    return buf.getvalue()


def to_markdown(table: Table) -> str:
    """A Markdown table with differing hyper-parameters in bold."""
    def cell(row: dict[str, Any], key: str) -> str:
        text = table.text(row, key).replace("|", "\\|")
        return f"**{text}**" if key in table.differing and text else text

    lines = ["| " + " | ".join(table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(cell(row, k) for k in table.keys) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


MAX_CELL = 28  # longer cells (folder paths) are shortened in the terminal table
# Never hidden to fit the terminal: what a row is and how it stands.
ESSENTIAL = {"name", "status", "model", "step", "note"}


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _drop_order(table: Table) -> list[str]:
    """Columns to hide first when the table is too wide: losses, settings that are the same for
    every run, wall time, secondary evaluations, data, resolution, differing settings, FID/KID."""
    evals = [k for k in table.keys if k in PIXEL_VALUES or k.rpartition("_")[0] in DISPLAY_NAMES]
    main = [k for k in evals if k.rpartition("_")[0] in ("fid", "kid")]
    losses = [k for k in table.keys if k not in table.settings and k not in evals
              and k not in ESSENTIAL and k != "wall"]
    same = [k for k in table.settings if k not in table.differing and k not in FIXED]
    differing = [k for k in table.settings if k in table.differing and k not in FIXED]
    order = (losses[::-1] + same + ["wall"] + [k for k in evals[::-1] if k not in main]
             + ["data", "resolution"] + differing + main[::-1])
    return [k for k in order if k in table.keys and k not in ESSENTIAL]


def to_terminal(table: Table, color: bool = False, width: int | None = None) -> str:
    """An aligned text table; differing hyper-parameters in yellow (`color`) or marked `*`.

    With `width` (the terminal's columns) long cells are shortened and the least telling
    columns hidden until the table fits; a last line names the hidden ones.
    """
    marker = "" if color else "*"
    texts = []
    for row in table.rows:
        cells = []
        for k in table.keys:
            text = table.text(row, k)
            if width is not None and k != "note":
                text = _shorten(text, MAX_CELL)
            cells.append(text + marker if k in table.differing and text else text)
        texts.append(cells)
    widths = [max([len(h)] + [len(t[i]) for t in texts]) for i, h in enumerate(table.headers)]
    shown = list(range(len(table.keys)))
    hidden: list[str] = []
    if width is not None:
        for key in _drop_order(table):
            if sum(widths[i] + 2 for i in shown) - 2 <= width:
                break
            i = table.keys.index(key)
            shown.remove(i)
            hidden.append(table.headers[i])

    def line(cells: list[str], keys: list[str] | None = None) -> str:
        out = []
        for i in shown:
            text = cells[i]
            padded = text.ljust(widths[i])
            if color and keys and keys[i] in table.differing and text:
                padded = f"\033[1;33m{padded}\033[0m"
            out.append(padded)
        return "  ".join(out).rstrip()

    lines = [line(table.headers), line(["-" * w for w in widths])]
    lines += [line(t, table.keys) for t in texts]
    if table.differing and not color and any(table.keys[i] in table.differing for i in shown):
        lines.append("* differs between these runs")
    if hidden:
        names = ", ".join(hidden[:4]) + (", …" if len(hidden) > 4 else "")
        lines.append(f"{len(hidden)} columns hidden to fit {width} ({names}): "
                     "--csv, --markdown or a larger --width show all")
    return "\n".join(lines) + "\n"
