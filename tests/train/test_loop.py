"""The training loop: a short run writes every run-folder file; resume equals uninterrupted."""

import json
from pathlib import Path

import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.runs import load_run
from latentstudio.runs.checkpoint import load_checkpoint
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

TINY = dict(data="shapes:96", resolution=32, batch_size=16, width=8, latent_dim=16, log_every=2,
            preview_count=4, seed=3)


def test_short_run_writes_every_file(tmp_path: Path) -> None:
    run = train(TrainConfig(epochs=2, out=str(tmp_path / "run"), **TINY), progress=False)
    for name in ["config.json", "metrics.jsonl", "progress.gif", "losses.png",
                 "checkpoints/last.pt", "samples/step_000000.png", "samples/step_000012.png"]:
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())
    meta = json.loads((run / "config.json").read_text())
    assert meta["config"]["model"] == "dcgan" and meta["config"]["lr"] == 2e-4
    assert meta["data"]["spec"] == "shapes:96" and len(meta["data"]["fingerprint"]) == 16
    assert meta["latentstudio_version"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 12 and {"loss_d", "loss_g", "time"} <= set(records[-1])
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert payload["progress"]["step"] == 12 and set(payload["models"]) == {"generator", "discriminator"}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    flat = {f"{m}.{k}": v for m, sd in payload["models"].items() for k, v in sd.items()}
    flat.update({f"ema.{k}": v for k, v in payload["step_state"].get("ema", {}).items()})
    return flat


@pytest.mark.parametrize("extra", [{}, {"ema": 0.9, "label_noise": 0.1, "augment": "diffaug"}])
def test_resume_equals_uninterrupted(tmp_path: Path, extra: dict) -> None:
    # 7 steps end mid-epoch (6 batches per epoch), so resume must restore the position in the epoch.
    whole = train(TrainConfig(steps=14, out=str(tmp_path / "whole"), **TINY, **extra), progress=False)
    half = train(TrainConfig(steps=7, out=str(tmp_path / "half"), **TINY, **extra), progress=False)
    train(resume=half, overrides={"steps": 14}, progress=False)
    a, b = _weights(whole), _weights(half)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    run = train(TrainConfig(steps=2, out=str(tmp_path / "r"), **TINY), progress=False)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(UserError, match="--resume"):
        train(TrainConfig(steps=2, out=str(run), **TINY), progress=False)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_bad_settings_fail_before_writing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="resolution"):
        train(TrainConfig(steps=2, out=str(tmp_path / "r"), **{**TINY, "resolution": 30}),
              progress=False)
    assert not (tmp_path / "r").exists()


def test_checkpoint_from_another_model_is_refused(tmp_path: Path) -> None:
    a = train(TrainConfig(steps=2, out=str(tmp_path / "a"), **TINY), progress=False)
    b = train(TrainConfig(steps=2, out=str(tmp_path / "b"), **{**TINY, "width": 16}), progress=False)
    (a / "checkpoints" / "last.pt").write_bytes((b / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(UserError, match="does not fit"):
        load_run(a)


def test_truncated_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    run = train(TrainConfig(steps=2, out=str(tmp_path / "r"), **TINY), progress=False)
    ckpt = run / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(UserError, match="not a readable"):
        train(resume=run, progress=False)


def test_sample_from_run(tmp_path: Path) -> None:
    run = load_run(train(TrainConfig(steps=2, out=str(tmp_path / "r"), **TINY), progress=False))
    a, b = run.sample(5, seed=1), run.sample(5, seed=1)
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, run.sample(5, seed=2))


def test_checkpoint_keeps_only_the_training_gpus_generator(tmp_path: Path, monkeypatch) -> None:
    """A CPU run on a machine with GPUs never queries them; a CUDA run saves its own device's
    generator, and a 0.1.0 checkpoint (one state per GPU) restores the right one."""
    from latentstudio.runs import checkpoint

    calls: list[tuple] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: calls.append(("all",)))
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda d: calls.append(("get", d)) or torch.ones(3))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, d: calls.append(("set", s.tolist(), d)))
    kwargs = dict(models={}, step_state={}, config={}, progress={})
    checkpoint.save_checkpoint(tmp_path / "cpu.pt", device=torch.device("cpu"), **kwargs)
    assert "cuda" not in load_checkpoint(tmp_path / "cpu.pt")["rng"] and calls == []

    gpu = torch.device("cuda", 1)
    checkpoint.save_checkpoint(tmp_path / "gpu.pt", device=gpu, **kwargs)
    payload = load_checkpoint(tmp_path / "gpu.pt")
    assert calls == [("get", gpu)] and payload["rng"]["cuda"].tolist() == [1, 1, 1]
    calls.clear()
    checkpoint.restore_rng(payload, torch.device("cpu"))
    assert calls == []
    checkpoint.restore_rng(payload, gpu)
    assert calls == [("set", [1, 1, 1], gpu)]

    calls.clear()
    old = {"rng": {"torch": torch.get_rng_state(), "cuda": [torch.zeros(2), torch.full((2,), 7)]}}
    checkpoint.restore_rng(old, gpu)
    checkpoint.restore_rng(old, torch.device("cuda", 5))  # fewer GPUs now: nothing to restore
    assert calls == [("set", [7, 7], gpu)]


def test_a_gray_folder_run_trained_as_rgb_resumes_as_rgb(tmp_path: Path, capsys) -> None:
    """Runs made before gray folders loaded as 1 channel keep the channels they were built with."""
    import json

    from PIL import Image

    from latentstudio.cli import main

    folder = tmp_path / "gray"
    folder.mkdir()
    for i in range(16):
        Image.new("L", (32, 32), 10 * i).save(folder / f"{i}.png")
    run = tmp_path / "run"
    argv = ["train", "--data", f"folder:{folder}", "--width", "8", "--latent-dim", "8",
            "--batch-size", "8", "--steps", "2", "--preview-count", "4", "--out", str(run)]
    assert main([*argv, "--channels", "3"]) == 0
    meta = json.loads((run / "config.json").read_text())
    meta["config"]["channels"] = None  # as a run of the old default (the data's own = RGB) was
    (run / "config.json").write_text(json.dumps(meta))
    assert main(["train", "--resume", str(run), "--steps", "4"]) == 0
    assert "changed since this run started" not in capsys.readouterr().err
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"] == 4


def test_a_vae_previews_more_images_than_its_data_has(tmp_path: Path) -> None:
    from latentstudio.train.config import TrainConfig

    run = train(TrainConfig(model="vae-conv", data="shapes:8", resolution=32, width=8,
                            latent_dim=4, batch_size=8, steps=1, preview_count=16,
                            out=str(tmp_path / "vae"), device="cpu"), progress=False)
    assert sorted((run / "samples").glob("step_*.png"))
