"""Latent walks: frame counts, exact keyframes, seamless loops, GIF/MP4/frames output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.explore.interpolate import interpolate, walk, walk_images, walk_labels
from latentstudio.explore.latents import Keyframe, save_latent, slerp
from latentstudio.images import to_uint8
from latentstudio.runs import load_run


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1, 1)))


@pytest.fixture
def keys() -> torch.Tensor:
    return torch.randn(3, 64, generator=torch.Generator().manual_seed(0))


class TestWalk:
    def test_open_walk_hits_every_keyframe_exactly(self, keys: torch.Tensor) -> None:
        path = walk(keys, steps=10, mode="slerp")
        assert len(path) == 2 * 10 + 1
        for i in range(3):
            assert torch.allclose(path[10 * i], keys[i], atol=1e-5, rtol=0)

    def test_loop_first_and_last_frames_are_consecutive_neighbours(self, keys: torch.Tensor) -> None:
        steps = 12
        path = walk(keys, steps=steps, mode="slerp", loop=True)
        assert len(path) == 3 * steps
        assert torch.allclose(path[0], keys[0], atol=1e-5, rtol=0)
        # One more step along the last transition lands exactly on the first frame: the wrap
        # (last -> first) is an ordinary step, not a repeated frame (stutter) and not a jump.
        nxt = slerp(keys[2], keys[0], torch.tensor([(steps - 1) / steps, 1.0]))
        assert torch.allclose(nxt[0], path[-1], atol=1e-5) and torch.allclose(nxt[1], path[0], atol=1e-5)
        wrap, step = angle(path[-1], path[0]), angle(path[-2], path[-1])
        assert 0 < wrap and wrap == pytest.approx(step, rel=0.05)

    def test_lerp_steps_are_even(self, keys: torch.Tensor) -> None:
        path = walk(keys[:2], steps=4, mode="lerp")
        gaps = (path[1:] - path[:-1]).norm(dim=1)
        assert torch.allclose(gaps, gaps[0].expand(4), rtol=1e-4)

    def test_bad_settings(self, keys: torch.Tensor) -> None:
        with pytest.raises(UserError, match="at least two keyframes"):
            walk(keys[:1], steps=4)
        with pytest.raises(UserError, match="--mode"):
            walk(keys, steps=4, mode="cubic")
        with pytest.raises(UserError, match="--steps"):
            walk(keys, steps=0)


def test_labels_switch_at_the_midpoint_of_a_transition() -> None:
    assert walk_labels([None, None], 4) is None
    assert walk_labels([0, 2], 4).tolist() == [0, 0, 2, 2, 2]
    assert walk_labels([0, 2], 4, loop=True).tolist() == [0, 0, 2, 2, 2, 2, 0, 0]


def test_walk_images_start_at_the_seed_sample(dcgan_run: Path) -> None:
    run = load_run(dcgan_run)
    frames = [Keyframe(run.latents(1, s)[0], None, str(s)) for s in (3, 17)]
    images = walk_images(run, frames, steps=5)
    assert images.shape == (6, 3, 16, 16)
    assert torch.allclose(images[0], run.sample(1, seed=3)[0], atol=1e-5)
    assert torch.allclose(images[-1], run.sample(1, seed=17)[0], atol=1e-5)


def test_gif_loop_has_keyframes_times_steps_frames(dcgan_run: Path, tmp_path: Path) -> None:
    out = interpolate(dcgan_run, "3,17,42", tmp_path / "walk.gif", steps=4, loop=True, fps=10)
    with Image.open(out) as gif:
        assert gif.n_frames == 12
        assert gif.size == (512, 512)  # enlarged for looking at (16 px x 32)


def test_frames_folder_and_latent_file_keyframes(dcgan_run: Path, tmp_path: Path) -> None:
    z = torch.randn(16, generator=torch.Generator().manual_seed(5))
    save_latent(tmp_path / "key.pt", z)
    out = interpolate(dcgan_run, [str(tmp_path / "key.pt"), "3"], tmp_path / "frames", steps=3,
                      size=32)
    files = sorted(out.glob("frame_*.png"))
    assert len(files) == 4
    first = np.asarray(Image.open(files[0]).resize((16, 16), Image.LANCZOS)).astype(int)
    expected = to_uint8(load_run(dcgan_run).generate(z[None]))[0].permute(1, 2, 0).numpy()
    assert np.abs(first - expected).mean() < 12  # the same picture, after a 2x up- and downscale


def test_mp4_through_imageio_ffmpeg(dcgan_run: Path, tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = interpolate(dcgan_run, "1,2", tmp_path / "walk.mp4", steps=5, fps=12)
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    frames = list(reader)
    assert len(frames) == 6
    assert tuple(meta["size"]) == (512, 512)  # tiny frames are scaled up for players


def test_interpolate_errors(dcgan_run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="at least two keyframes"):
        interpolate(dcgan_run, "3", tmp_path / "w.gif")
    with pytest.raises(UserError, match="bad seed|neither a seed"):
        interpolate(dcgan_run, "3,x7", tmp_path / "w.gif")
    with pytest.raises(UserError, match=r"\.gif, \.mp4, \.webm or \.mov"):
        interpolate(dcgan_run, "3,4", tmp_path / "w.avi")
    (tmp_path / "f").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        interpolate(dcgan_run, "3,4", tmp_path / "f" / "w.gif")
    with pytest.raises(UserError, match="not a latentstudio run folder"):
        interpolate(tmp_path, "3,4", tmp_path / "w.gif")
