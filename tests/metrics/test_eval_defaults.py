"""`eval` without --n: a sample count that suits the device and the real set; small real sets
are called out and KID leads; sampling shows a progress bar."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentstudio.cli import main
from latentstudio.metrics.evaluate import default_n, sample_run
from latentstudio.runs import load_run


@pytest.fixture
def run(tiny_run) -> Path:
    return tiny_run("dcgan", name="tiny-dcgan")


def test_default_sample_count_follows_device_and_real_set() -> None:
    assert default_n(64, "cpu") == 200  # a floor: fewer samples say too little
    assert default_n(1500, "cpu") == 1500
    assert default_n(60000, "cpu") == 2000  # minutes, not an hour, on a CPU
    assert default_n(60000, "cuda") == 10000 and default_n(3000, "cuda:1") == 3000


def test_small_real_set_is_called_out_and_kid_leads(run: Path, tiny_extractor: object,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(run), "--extractor", "tiny", "--metrics", "fid,kid",
                 "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("200 generated vs 64 real images")
    assert out[1].strip().startswith("KID (tiny)")
    assert any(line.startswith("note: only 64 real images: FID is strongly biased")
               for line in out)


def test_sampling_shows_progress_and_matches_run_sample(run: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    loaded = load_run(run)
    images = sample_run(loaded, 300, seed=2, progress=True, batch_size=100)
    assert torch.equal(images, loaded.sample(300, seed=2))
    assert "generating" in capsys.readouterr().err
