"""Where latentstudio keeps downloaded data and weights."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: $LATENTSTUDIO_CACHE, else ~/.cache/latentstudio."""
    root = os.environ.get("LATENTSTUDIO_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "latentstudio"
    return path
