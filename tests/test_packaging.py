"""What `pip install latentstudio` brings: MP4 writing works without an extra."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_mp4_writer_is_a_core_dependency() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    names = {re.split(r"[<>=;\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert "imageio-ffmpeg" in names
    # The old extra still installs, so existing install lines keep working.
    assert "video" in project["optional-dependencies"]
