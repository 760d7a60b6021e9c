"""Seed lists and ranges (`--seeds 0-35`, `1,5,10-20`): parsing, one-line errors, and every
command that takes seeds drawing exactly the listed ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_line_error
from PIL import Image

from latentstudio.cli import main
from latentstudio.errors import UserError
from latentstudio.explore.latents import split_keys
from latentstudio.explore.seeds import MAX_SEEDS, parse_seeds


@pytest.mark.parametrize("text,seeds", [
    ("0-3", [0, 1, 2, 3]), ("1,5,10-12", [1, 5, 10, 11, 12]), ("7", [7]), (" 2 , 4-4 ", [2, 4]),
    ("3,1", [3, 1]), (f"0-{MAX_SEEDS - 1}", list(range(MAX_SEEDS)))])
def test_seed_lists_and_ranges(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text,message", [
    ("5-2", "--seeds 5-2: a range goes up, so write 2-5"),
    ("-3", "seeds are whole numbers >= 0, not -3"),
    ("1,-3", "seeds are whole numbers >= 0"),
    ("1,,2", "empty entry"),
    ("a-b", "bad entry 'a-b'"),
    ("1.5", "bad entry '1.5'"),
    ("1-2-3", "bad entry"),
    (f"0-{MAX_SEEDS}", f"at most {MAX_SEEDS} seeds"),
    ("0-99999999999999999999", "seeds go up to"),
    ("5,0-9999", f"at most {MAX_SEEDS} seeds"),
])
def test_bad_seed_lists_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UserError, match="seed|range|entry") as info:
        parse_seeds(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_keyframe_lists_expand_ranges_and_keep_files() -> None:
    assert split_keys("3,10-12,walk.pt,2024-01.png") == ["3", "10", "11", "12", "walk.pt", "2024-01.png"]
    with pytest.raises(UserError, match="a range goes up"):
        split_keys("3,9-8")
    with pytest.raises(UserError, match="seeds go up to"):
        split_keys("3,99999999999999999999")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_sample_seeds_draws_exactly_the_listed_seeds(dcgan_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["sample", str(dcgan_run), "--seeds", "2-4,9", "--out", str(tmp_path / "list") + "/"]) == 0
    names = sorted(p.name for p in (tmp_path / "list").iterdir())
    assert names == ["seed2.png", "seed3.png", "seed4.png", "seed9.png"]
    for seed in (3, 9):  # each is the picture `sample --seed S --n 1` makes
        one = tmp_path / f"one{seed}"
        assert main(["sample", str(dcgan_run), "--seed", str(seed), "--n", "1", "--out", str(one) + "/"]) == 0
        assert np.array_equal(_pixels(tmp_path / "list" / f"seed{seed}.png"), _pixels(one / f"seed{seed}_0000.png"))
    assert not np.array_equal(_pixels(tmp_path / "list" / "seed2.png"), _pixels(tmp_path / "list" / "seed3.png"))
    # The old behaviour is unchanged: --seed S --n 3 draws three latents from one generator.
    assert main(["sample", str(dcgan_run), "--seed", "3", "--n", "2", "--out", str(tmp_path / "old") + "/"]) == 0
    assert np.array_equal(_pixels(tmp_path / "old" / "seed3_0000.png"), _pixels(tmp_path / "list" / "seed3.png"))
    assert not np.array_equal(_pixels(tmp_path / "old" / "seed3_0001.png"), _pixels(tmp_path / "list" / "seed4.png"))


def test_sample_seeds_grid_has_one_cell_per_seed(dcgan_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    assert main(["sample", str(dcgan_run), "--seeds", "0-5", "--nrow", "6", "--size", "native",
                 "--out", str(out)]) == 0
    with Image.open(out) as im:  # one row of six 16 px cells with 2 px padding
        assert im.size == (6 * 18 + 2, 18 + 2)


@pytest.mark.parametrize("argv,message", [
    (["sample", "RUN", "--seeds", "5-2"], "--seeds 5-2: a range goes up"),
    (["sample", "RUN", "--seeds", "-1"], "whole numbers >= 0"),
    (["sample", "RUN", "--seeds", "0-20000", "--out", "x/"], "at most 10000 seeds"),
    (["sample", "RUN", "--seeds", "1,2", "--seed", "4"], "not both"),
    (["sample", "RUN", "--seeds", "0-1024", "--out", "g.png"], "--seeds lists 1025: a grid holds at most 1024"),
    (["interpolate", "RUN", "--seeds", "3,9-1"], "a range goes up"),
    (["vector", "RUN", "--positive", "1-0", "--negative", "3"], "a range goes up"),
    (["render", "RUN", "--seeds", "4-1"], "a range goes up"),
])
def test_bad_seed_flags_are_one_line_errors(dcgan_run: Path, argv: list[str], message: str,
                                            capsys) -> None:
    argv = [str(dcgan_run) if a == "RUN" else a for a in argv]
    assert message in one_line_error(argv, capsys)


def test_interpolate_keyframe_range(dcgan_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "walk.gif"
    assert main(["interpolate", str(dcgan_run), "--seeds", "3-5", "--steps", "2", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 2 * 2 + 1  # three keyframes 3, 4, 5


def test_render_seeds_writes_one_picture_per_seed(cppn_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "big.png"
    assert main(["render", str(cppn_run), "--seeds", "1-2", "--width", "24", "--out", str(out)]) == 0
    a, b = _pixels(tmp_path / "big-seed1.png"), _pixels(tmp_path / "big-seed2.png")
    assert a.shape == (24, 24, 3) and not np.array_equal(a, b)
    assert main(["render", str(cppn_run), "--seed", "2", "--width", "24", "--out", str(out)]) == 0
    assert np.array_equal(_pixels(out), b)
