"""Easing within each transition of a walk and holding on keyframes: the curves, frame counts,
exact keyframes, and `interpolate --easing/--hold` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_checks import one_line_error
from PIL import Image

from latentstudio.cli import main
from latentstudio.errors import UserError
from latentstudio.explore.interpolate import (
    EASINGS,
    frame_count,
    hold_index,
    walk,
    walk_images,
)
from latentstudio.explore.latents import Keyframe, lerp, slerp
from latentstudio.runs import load_run


def test_easing_curves() -> None:
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    assert torch.equal(EASINGS["linear"](t), t)
    assert torch.allclose(EASINGS["smooth"](t), 3 * t**2 - 2 * t**3)
    cubic = EASINGS["cubic"](t)
    assert torch.allclose(cubic[:50], 4 * t[:50] ** 3)
    assert torch.allclose(cubic, 1 - EASINGS["cubic"](1 - t))  # symmetric: classes switch at t = .5
    for name, f in EASINGS.items():
        y = f(t)
        assert y[0] == 0 and y[-1] == 1 and y[50] == pytest.approx(0.5), name
        assert (y[1:] >= y[:-1]).all(), name  # never goes back
    # Slower near the keyframes than linear, cubic more so than smooth.
    assert cubic[1] < EASINGS["smooth"](t)[1] < t[1]


@pytest.mark.parametrize("mode,fn", [("lerp", lerp), ("slerp", slerp)])
def test_easing_reparametrises_time_within_each_segment(mode: str, fn) -> None:
    keys = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    steps = 8
    path = walk(keys, steps, mode, easing="smooth")
    assert len(path) == frame_count(3, steps)
    s = torch.arange(steps, dtype=torch.float64) / steps
    expected = fn(keys[1], keys[2], 3 * s**2 - 2 * s**3)
    assert torch.allclose(path[steps:2 * steps].double(), expected.double(), atol=1e-5)
    for i in range(3):
        assert torch.allclose(path[i * steps], keys[i], atol=1e-5, rtol=0)
    linear = walk(keys, steps, mode)
    # Eased steps next to a keyframe are shorter than linear ones, the middle ones longer.
    gap = lambda p, f: float((p[f + 1] - p[f]).norm())  # noqa: E731
    assert gap(path, 0) < gap(linear, 0) and gap(path, 3) > gap(linear, 3)


@pytest.mark.parametrize("keys,steps,loop,hold", [(3, 4, False, 2), (3, 4, True, 1), (2, 1, False, 0),
                                                  (4, 5, True, 0), (2, 3, False, 5)])
def test_hold_repeats_each_keyframe(keys: int, steps: int, loop: bool, hold: int) -> None:
    index = hold_index(keys, steps, loop, hold)
    assert len(index) == frame_count(keys, steps, loop, hold) == frame_count(keys, steps, loop) + keys * hold
    counts = torch.bincount(index)
    for k in range(keys):
        assert counts[k * steps] == 1 + hold
    assert counts.sum() - keys * (1 + hold) == len(counts) - keys  # other frames once
    assert (index[1:] >= index[:-1]).all()


def test_hold_index_example() -> None:
    assert hold_index(3, 4, False, 2).tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4, 5, 6, 7, 8, 8, 8]


def test_walk_images_hold_and_progress(dcgan_run: Path) -> None:
    run = load_run(dcgan_run)
    frames = [Keyframe(run.latents(1, s)[0], None, str(s)) for s in (3, 17)]
    seen: list[tuple[int, int]] = []
    images = walk_images(run, frames, steps=4, hold=2, easing="cubic", batch_size=2,
                         progress=lambda done, total: seen.append((done, total)))
    assert images.shape[0] == frame_count(2, 4, hold=2) == 9
    sample3, sample17 = run.sample(1, seed=3)[0], run.sample(1, seed=17)[0]
    for f in range(3):
        assert torch.allclose(images[f], sample3, atol=1e-5)
    for f in range(6, 9):
        assert torch.allclose(images[f], sample17, atol=1e-5)
    assert not torch.allclose(images[3], sample3, atol=1e-3)
    # Five plain frames in batches of two: progress in frames of the held walk, up to all 9.
    assert seen == [(4, 9), (6, 9), (9, 9)]


def test_interpolate_easing_and_hold_from_the_command_line(dcgan_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "walk.gif"
    assert main(["interpolate", str(dcgan_run), "--seeds", "3,17,42", "--steps", "4", "--hold", "3",
                 "--easing", "smooth", "--loop", "--size", "native", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        # Pillow merges identical consecutive GIF frames into one longer frame, so count time.
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
    assert sum(durations) == frame_count(3, 4, loop=True, hold=3) * min(durations)
    assert max(durations) >= 4 * min(durations)  # a held keyframe: shown 1 + 3 times


def test_mp4_frame_count_with_hold(dcgan_run: Path, tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "walk.mp4"
    assert main(["interpolate", str(dcgan_run), "--seeds", "1,2", "--steps", "3", "--hold", "4",
                 "--easing", "cubic", "--out", str(out)]) == 0
    reader = imageio_ffmpeg.read_frames(str(out))
    next(reader)
    assert len(list(reader)) == frame_count(2, 3, hold=4) == 12


@pytest.mark.parametrize("argv,message", [
    (["--easing", "bounce"], "invalid choice"),
    (["--hold", "-1"], "must not be negative"),
    (["--hold", "2000", "--steps", "1"], "frames"),
])
def test_bad_easing_and_hold(dcgan_run: Path, tmp_path: Path, argv: list[str], message: str, capsys) -> None:
    err = one_line_error(["interpolate", str(dcgan_run), "--seeds", "1,2,3", "--out",
                          str(tmp_path / "w.gif"), *argv], capsys)
    assert message in err


def test_library_checks_easing_and_hold() -> None:
    keys = torch.randn(2, 4)
    with pytest.raises(UserError, match="--easing must be linear, smooth, cubic"):
        walk(keys, 4, easing="bounce")
    from latentstudio.explore.interpolate import check_easing

    with pytest.raises(UserError, match="--hold"):
        check_easing("linear", -1)
