"""Atomic file writes: write a temporary file beside the target, then rename over it.

A write that fails (full disk, read-only folder) leaves the old file as it was and removes its
temporary file; a process killed mid-write leaves one `.NAME.*.tmp` beside the target, which
`remove_stale_temps` clears at the next start.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch


def _umask() -> int:
    """The process's umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly racy with other threads)
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    """The mode open() would leave: the existing file's, or 0o666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` so readers see the old file or the new one, never half of one.

    An OSError (e.g. ENOSPC, EROFS) always carries the target's path as its filename.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600: others could not read the file
                os.fchmod(f.fileno(), _new_file_mode(path))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _discard(tmp)
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e  # the file asked for, not the temp
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass  # e.g. the folder became read-only; the next start clears it


def remove_stale_temps(folder: str | os.PathLike, patterns: Iterable[str]) -> int:
    """Delete the temporary files `write_bytes` left beside the files `folder/PATTERN` (glob
    patterns, e.g. "*.pt") when killed mid-write; how many went. Only for files no other process
    may be writing."""
    removed = 0
    for pattern in patterns:
        for tmp in Path(folder).glob(f".{pattern}.*.tmp"):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass  # read-only or already gone: the write that follows reports a real problem
    return removed


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write `obj` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically `torch.save` plain tensors/containers (loadable with weights_only=True)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes(path, buf.getvalue())
