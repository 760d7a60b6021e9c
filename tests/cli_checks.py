"""Checks on the command line shared by the test folders (importable as `cli_checks`), and the
files they feed it."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentstudio.cli import main


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The command's stderr, checked to be exit 2 with one `error:` line (argparse's or ours)."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse reports bad flag values this way
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "error:" in err and "\n" not in err and "Traceback" not in err
    return err


def train_refuses(flags: list[str], message: str, out: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    """`train FLAGS --out OUT` fails with `message` in one line, with --dry-run and without, and
    writes nothing."""
    for dry in (["--dry-run"], []):
        assert message in one_line_error(["train", *flags, "--out", str(out), *dry], capsys)
    assert not out.exists()


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height pixels and holds none: opening it costs nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
                     + struct.pack(">I", zlib.crc32(chunk)) + b"\0\0\0\0IEND\xaeB`\x82")
    return path


def png_array(data: bytes) -> np.ndarray:
    """PNG bytes (as the gallery serves them) as an RGB array."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def sprites(folder: Path, count: int = 32, side: int = 16,
            hidden: tuple[int, int, int] = (0, 0, 0)) -> Path:
    """`count` coloured discs and squares centred on a fully transparent background (whose colour
    under the clear pixels is `hidden`, which no loader should let through)."""
    from PIL import ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        img = Image.new("RGBA", (side, side), (*hidden, 0))
        r = side // 4 + i % 3
        box = (side // 2 - r, side // 2 - r, side // 2 + r, side // 2 + r)
        colour = (*map(int, rng.integers(0, 256, 3)), 255)
        (ImageDraw.Draw(img).ellipse if i % 2 else ImageDraw.Draw(img).rectangle)(box, fill=colour)
        img.save(folder / f"sprite{i:02d}.png")
    return folder
