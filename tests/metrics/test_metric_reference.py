"""benchmarks/metric_reference.py on two tiny folders: it prints one row per kind of image and
damaged images score worse than held-out real ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from latentstudio.data.shapes import make_shapes
from latentstudio.images import to_pil

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "metric_reference.py"


def _folder(root: Path, seed: int) -> Path:
    root.mkdir()
    for i, image in enumerate(make_shapes(24, 32, seed=seed).images):
        to_pil(image).save(root / f"{i}.png")
    return root


def test_metric_reference_ranks_noise_below_held_out_images(tmp_path: Path) -> None:
    train, held = _folder(tmp_path / "train", 0), _folder(tmp_path / "held", 1)
    out = subprocess.run([sys.executable, str(SCRIPT), "--train", str(train), "--held-out",
                          str(held), "--resolution", "32", "--extractor", "lite0", "--threads", "1"],
                         capture_output=True, text=True, check=True).stdout
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines()
            if line.startswith("| ") and line.split("|")[2].strip()[:1].isdigit()}
    assert set(rows) == {"held-out", "shifted 1/8", "blurred 4x", "noise 0.3", "quarters shuffled",
                         "left and right halves of two images"}
    assert rows["noise 0.3"] > rows["held-out"] and rows["blurred 4x"] > rows["held-out"]
    assert rows["quarters shuffled"] > rows["held-out"]
