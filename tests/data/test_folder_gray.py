"""A folder of grayscale pictures loads as 1 channel unless --channels says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentstudio.cli import main
from latentstudio.data import load_dataset


def gray_folder(root: Path, modes: tuple[str, ...] = ("L", "LA", "1", "I;16")) -> Path:
    root.mkdir()
    for i, mode in enumerate(modes * 3):
        value = 40 * (i % 5)
        if mode == "I;16":
            img = Image.fromarray(np.full((24, 20), value * 257, np.uint16))
            assert img.mode.startswith("I;16")
        else:
            img = Image.new(mode, (20, 24), (value, 255) if mode == "LA" else value)
        img.save(root / f"{i:02d}.png")
    return root


def test_gray_folder_loads_one_channel_and_says_so(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = gray_folder(tmp_path / "gray")
    assert load_dataset(f"folder:{folder}", 16, progress=False).channels == 1
    assert load_dataset(f"folder:{folder}", 16, channels=3, progress=False).channels == 3
    capsys.readouterr()
    assert main(["info", f"folder:{folder}", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "12 images, 32 px, 1 channel," in out
    assert "grayscale" in err and "--channels 3" in err


def test_one_colour_image_makes_the_folder_colour(tmp_path: Path) -> None:
    folder = gray_folder(tmp_path / "mixed")
    Image.new("RGB", (20, 20), (200, 30, 30)).save(folder / "red.png")
    assert load_dataset(str(folder), 16, progress=False).channels == 3


def test_training_on_a_gray_folder_builds_a_one_channel_model(tmp_path: Path) -> None:
    from latentstudio.train.config import TrainConfig
    from latentstudio.train.loop import train

    folder = gray_folder(tmp_path / "gray")
    run = train(TrainConfig(data=f"folder:{folder}", steps=1, width=8, resolution=16,
                            batch_size=4, latent_dim=8, preview_count=4, out=str(tmp_path / "run"),
                            device="cpu", precision="fp32"), progress=False)
    meta = json.loads((Path(run) / "config.json").read_text())
    assert meta["model_config"]["channels"] == 1 and meta["data"]["channels"] == 1
