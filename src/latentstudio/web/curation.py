"""Favourites of a run: PNGs (and their latents) in RUN/curated/, listed in RUN/curated.json.

Every write is atomic (temp file + rename) and happens under a per-run lock, so concurrent stars
never lose an entry and a reader never sees half a file. The lock is an OS file lock on
RUN/curated/.lock, so it also holds between gallery servers sharing one runs folder; where the
OS has no `fcntl` (Windows) it only holds inside one server process. Only RUN/curated.json and
files inside RUN/curated/ are ever written. A write the file system refuses (read-only, no
permission, disk full) raises FolderNotWritable, whose message names the folder and the cause.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


class FolderNotWritable(UserError):
    """The file system refused a curation write; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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


def refused_write(error: BaseException, what: str, where: Path) -> FolderNotWritable | None:
    """The FolderNotWritable (403 or 507) for a write of `what` into `where` that the file system
    refused for a reason the user can fix, else None."""
    # Writers that turn their OSError into a UserError keep the errno in the context.
    if isinstance(error, UserError) and not isinstance(error, FolderNotWritable):
        error = error.__context__
    if not isinstance(error, OSError):
        return None
    code = error.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return FolderNotWritable(f"cannot save {what} in {where}: no space left on its disk; "
                                 "free some space and try again", 507)
    if code == errno.EROFS:
        return FolderNotWritable(f"cannot save {what} in {where}: it is on a read-only file "
                                 "system; copy the run to a writable folder", 403)
    if code in (errno.EACCES, errno.EPERM):
        return FolderNotWritable(f"cannot save {what} in {where}: permission denied; make "
                                 "the run folder writable for this user or copy it", 403)
    return None


@contextmanager
def _writing(run_dir: Path) -> Iterator[Path]:
    """`_exclusive`, turning a refused write into FolderNotWritable; yields curated/."""
    try:
        with _exclusive(run_dir) as folder:
            yield folder
    except (OSError, UserError) as e:
        refusal = refused_write(e, "favourites", run_dir)
        if refusal is None:
            raise
        raise refusal from e


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

    Starring the same key twice returns the existing item. When a write fails, the files of
    this star are removed again and curated.json is left as it was.
    """
    with _writing(run_dir) as folder:
        items, _ = read_curated(run_dir)
        for item in items:
            if item.get("key") == key:
                return item
        iid = item_id(key)
        item = {"id": iid, "key": key, "file": f"curated/{iid}.png", **info,
                "label": label, "latent": None, "latent_file": None,
                "created": datetime.now().isoformat(timespec="seconds")}
        written = [folder / f"{iid}.png"]
        try:
            save_png(image, written[0])
            if latent is not None:
                z = latent.reshape(-1).float()
                written.append(folder / f"{iid}.pt")
                # The same latent file `latentstudio interpolate/sample` read as keyframes.
                save_latent(written[1], z, label, run=run_dir.name)
                item["latent"] = [round(float(v), 6) for v in z]
                item["latent_file"] = f"curated/{iid}.pt"
            atomic.write_json(run_dir / "curated.json", {"format": FORMAT, "items": items + [item]})
        except BaseException:
            for path in written:
                with suppress(OSError):
                    path.unlink(missing_ok=True)
            raise
        return item


def remove_item(run_dir: Path, iid: str) -> bool:
    """Unstar: drop the item from curated.json, then delete its files. False when not found."""
    if not _ID.match(iid) or find_item(run_dir, iid) is None:  # a 404 creates no curated/
        return False
    with _writing(run_dir) as folder:
        items, _ = read_curated(run_dir)
        keep = [i for i in items if i.get("id") != iid]
        if len(keep) == len(items):
            return False
        atomic.write_json(run_dir / "curated.json", {"format": FORMAT, "items": keep})
        for suffix in (".png", ".pt"):
            # The unstar has happened once curated.json is written; a file left behind is harmless.
            with suppress(OSError):
                (folder / f"{iid}{suffix}").unlink(missing_ok=True)
        return True


def find_item(run_dir: Path, iid: str) -> dict[str, Any] | None:
    """The listed item with this id, or None."""
    items, _ = read_curated(run_dir)
    return next((i for i in items if i.get("id") == iid), None)
