"""Pictures meant for looking at are big enough to see, sharply; raw pixels stay available."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentstudio.cli import main
from latentstudio.explore.interpolate import interpolate
from latentstudio.explore.sampling import sample_to
from latentstudio.images import VIEW_SIDE, enlarge


def test_enlarge_is_whole_number_nearest_by_default() -> None:
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (34, 70, 3), dtype=np.uint8))
    big = enlarge(small)
    assert big.size == (70 * 8, 34 * 8)  # the first whole multiple reaching 512
    assert np.array_equal(np.asarray(big)[::8, ::8], np.asarray(small))  # crisp: pixels copied
    assert enlarge(small, 300, exact=True).size == (300, round(34 * 300 / 70))
    assert enlarge(big) is big and enlarge(small, None) is small


def test_sample_grid_is_viewable_and_native_on_request(dcgan_run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    grid = sample_to(dcgan_run, tmp_path / "grid.png", n=16)
    native = sample_to(dcgan_run, tmp_path / "native.png", n=16, size="native")
    with Image.open(grid) as g, Image.open(native) as n:
        assert n.size == (4 * 18 + 2, 4 * 18 + 2)  # 16 px cells, 2 px padding
        assert min(g.size) >= VIEW_SIDE
        factor = g.width // n.width
        assert g.size == (n.width * factor, n.height * factor)
        assert np.array_equal(np.asarray(g)[::factor, ::factor], np.asarray(n))
    singles = sample_to(dcgan_run, tmp_path / "singles", n=2)
    with Image.open(singles / "seed0_0000.png") as one:
        assert one.size == (16, 16)  # a folder keeps the model's own pixels
    assert main(["sample", str(dcgan_run), "--n", "4", "--size", "200",
                 "--out", str(tmp_path / "two.png")]) == 0
    with Image.open(tmp_path / "two.png") as two:
        assert two.size == (200, 200)
    with pytest.raises(SystemExit):
        main(["sample", str(dcgan_run), "--size", "big"])
    assert "'big' is not a size" in capsys.readouterr().err


def test_walk_gif_is_viewable_frames_folder_native(dcgan_run: Path, tmp_path: Path) -> None:
    gif = interpolate(dcgan_run, "1,2", tmp_path / "walk.gif", steps=3)
    with Image.open(gif) as im:
        assert im.size == (512, 512)  # 16 px x 32
    frames = interpolate(dcgan_run, "1,2", tmp_path / "frames", steps=3)
    with Image.open(sorted(Path(frames).glob("*.png"))[0]) as im:
        assert im.size == (16, 16)
    small = interpolate(dcgan_run, "1,2", tmp_path / "small.gif", steps=3, size="native")
    with Image.open(small) as im:
        assert im.size == (16, 16)
