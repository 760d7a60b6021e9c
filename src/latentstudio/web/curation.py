"""Favourites of a run: PNGs (and their latents) in RUN/curated/, listed in RUN/curated.json.

Every write is atomic (temp file + rename) and happens under a per-run lock, so concurrent stars
never lose an entry and a reader never sees half a file. The lock is an OS file lock on
RUN/curated/.lock, so it also holds between gallery servers sharing one runs folder; where the
OS has no `fcntl` (Windows) it only holds inside one server process. Only RUN/curated.json and
files inside RUN/curated/ are ever written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

import torch
from PIL import Image

from latentstudio import atomic
from latentstudio.errors import UserError
from latentstudio.explore.latents import save_latent
from latentstudio.images import save_png

FORMAT = 1
_ID = re.compile(r"^[0-9a-f]{12}$")
LOCK_FILE = ".lock"
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _thread_lock(run_dir: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(run_dir.resolve()), threading.Lock())


@contextmanager
def _exclusive(run_dir: Path) -> Iterator[Path]:
    """Hold the run's curation lock against other threads and other processes; yields curated/."""
    # The thread lock as well as flock: where flock is emulated with per-process POSIX locks
    # (NFS) or missing, it alone keeps two threads of one server apart.
    with _thread_lock(run_dir):
        folder = _check_targets(run_dir)
        folder.mkdir(exist_ok=True)
        try:
            fd = os.open(folder / LOCK_FILE, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                         0o666)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UserError(f"curated/{LOCK_FILE} in this run is a symbolic link; remove it") from None
            raise
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes, even if we crash
            yield folder
        finally:
            os.close(fd)


def _check_targets(run_dir: Path) -> Path:
    """RUN/curated/, refusing a curated/ or curated.json that is a link (it could point anywhere)."""
    folder = run_dir / "curated"
    for p in (folder, run_dir / "curated.json"):
        if p.is_symlink():
            raise UserError(f"{p.name} in this run is a symbolic link; refusing to write through it")
    if folder.exists() and not folder.is_dir():
        raise UserError("curated in this run is a file, not a folder")
    return folder


def read_curated(run_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """(items of RUN/curated.json, None), or ([], what is wrong with the file)."""
    path = run_dir / "curated.json"
    if not path.exists():
        return [], None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["items"]
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
            raise ValueError
        return items, None
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return [], "curated.json is damaged; starring again will rewrite it"


def item_id(key: str) -> str:
    """A short, file-name-safe id for an item key (the same key always gives the same id)."""
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def add_item(run_dir: Path, key: str, image: Image.Image, info: dict[str, Any],
             latent: torch.Tensor | None = None, label: int | None = None) -> dict[str, Any]:
    """Star a picture: write curated/ID.png (and ID.pt with its latent), then list it.

    Starring the same key twice returns the existing item.
    """
    with _exclusive(run_dir) as folder:
        items, _ = read_curated(run_dir)
        for item in items:
            if item.get("key") == key:
                return item
        iid = item_id(key)
        item = {"id": iid, "key": key, "file": f"curated/{iid}.png", **info,
                "label": label, "latent": None, "latent_file": None,
                "created": datetime.now().isoformat(timespec="seconds")}
        save_png(image, folder / f"{iid}.png")
        if latent is not None:
            z = latent.reshape(-1).float()
            # The same latent file `latentstudio interpolate/sample` read as keyframes.
            save_latent(folder / f"{iid}.pt", z, label, run=run_dir.name)
            item["latent"] = [round(float(v), 6) for v in z]
            item["latent_file"] = f"curated/{iid}.pt"
        atomic.write_json(run_dir / "curated.json", {"format": FORMAT, "items": items + [item]})
        return item


def remove_item(run_dir: Path, iid: str) -> bool:
    """Unstar: drop the item from curated.json, then delete its files. False when not found."""
    if not _ID.match(iid) or find_item(run_dir, iid) is None:  # a 404 creates no curated/
        return False
    with _exclusive(run_dir) as folder:
        items, _ = read_curated(run_dir)
        keep = [i for i in items if i.get("id") != iid]
        if len(keep) == len(items):
            return False
        atomic.write_json(run_dir / "curated.json", {"format": FORMAT, "items": keep})
        for suffix in (".png", ".pt"):
            (folder / f"{iid}{suffix}").unlink(missing_ok=True)
        return True


def find_item(run_dir: Path, iid: str) -> dict[str, Any] | None:
    """The listed item with this id, or None."""
    items, _ = read_curated(run_dir)
    return next((i for i in items if i.get("id") == iid), None)
