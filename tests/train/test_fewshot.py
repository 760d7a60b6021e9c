"""Few images: the settings a folder gets without --model, FastGAN's perceptual reconstruction
distance, the fastgan demo preset, and the few-shot benchmark in its quick mode."""

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
from PIL import Image

from latentstudio.cli import main
from latentstudio.commands.train import DEMO_FASTGAN
from latentstudio.train.auto import suggest
from latentstudio.train.config import TrainConfig

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def _folder(root: Path, count: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (20, 20), (i * 7 % 256, 40, 200)).save(root / f"{i}.png")
    return root


def test_a_folder_above_128_px_gets_fastgan_and_says_why(tmp_path, capsys):
    folder = _folder(tmp_path / "imgs", 12)
    assert main(["train", "--data", f"folder:{folder}", "--resolution", "256", "--device", "cpu",
                 "--dry-run"]) == 0
    out, err = capsys.readouterr()
    resolved = json.loads(out)
    assert resolved["model"] == "fastgan" and resolved["augment"] == "diffaug"
    assert resolved["ema"] == 0.999 and resolved["width"] == 8 and resolved["steps"] == 5000
    assert (resolved["grow_from"], resolved["grow_steps"], resolved["grow_batch_size"],
            resolved["batch_size"]) == (64, 3000, 16, 8)
    line = [ln for ln in err.splitlines() if ln.startswith("no --model given")]
    assert len(line) == 1 and "12 images at 256 px: fastgan" in line[0]
    assert "a 64 px run grown to 256 px drew people" in line[0]
    assert "--grow-from 64, --grow-steps 3000, --grow-batch-size 16" in line[0]


def test_a_folder_at_64_to_128_px_gets_fastgan_sized_for_the_device(tmp_path):
    folder = _folder(tmp_path / "imgs", 5)
    added, line = suggest({"data": str(folder), "resolution": 64, "width": 12}, on_gpu=False)
    assert added["model"] == "fastgan" and added["augment"] == "diffaug" and "width" not in added
    assert (added["batch_size"], added["lr"], added["lr_d"], added["ema_rampup"]) == (16, 1e-3, 5e-4, 0.2)
    assert "5 images at 64 px: fastgan" in line and "drew better than dcgan" in line
    added, line = suggest({"data": str(folder), "resolution": 128}, on_gpu=False)
    assert (added["model"], added["width"], added["batch_size"]) == ("fastgan", 8, 16)
    added, _ = suggest({"data": str(folder), "resolution": 256}, on_gpu=False)
    assert (added["model"], added["width"], added["batch_size"], added["grow_from"]) == \
        ("fastgan", 8, 8, 64)
    for told in ({"grow_from": 0}, {"init_from": "runs/emoji64"}):  # from the start at 256 px
        added, _ = suggest({"data": str(folder), "resolution": 256, **told}, on_gpu=False)
        assert (added["width"], added["batch_size"]) == (16, 8) and "grow_steps" not in added
    assert "grow_from" not in suggest({"data": str(folder), "resolution": 512}, on_gpu=True)[0]
    added, _ = suggest({"data": str(folder), "resolution": "64x128"}, on_gpu=True)
    assert (added["model"], added["width"], added["batch_size"]) == ("fastgan", 64, 8)
    assert "lr" not in added  # FastGAN's own 2e-4


def test_fastgan_on_a_cpu_is_compiled_where_a_compiler_is_found_and_the_run_is_long(tmp_path,
                                                                                     monkeypatch):
    import latentstudio.train.auto as auto

    folder = _folder(tmp_path / "imgs", 5)
    for found in (True, False):
        monkeypatch.setattr(auto, "cpu_compiler_available", lambda found=found: found)
        added, line = suggest({"data": str(folder), "resolution": 64}, on_gpu=False)
        assert added.get("compile", False) is found
        assert ("--compile;" in line) is found and "--compile True" not in line
    monkeypatch.setattr(auto, "cpu_compiler_available", lambda: True)
    assert "compile" not in suggest({"data": str(folder), "resolution": 64}, on_gpu=True)[0]
    for resolution in (64, 128, 256, "64x128"):
        assert suggest({"data": str(folder), "resolution": resolution}, on_gpu=False)[0]["compile"]
    assert "compile" not in suggest({"data": str(folder), "resolution": 64, "width": 4},
                                    on_gpu=False)[0]  # too cheap a step to gain
    assert "compile" not in suggest({"data": str(folder), "resolution": 32}, on_gpu=False)[0]  # dcgan
    added, _ = suggest({"data": str(folder), "resolution": 64, "compile": False}, on_gpu=False)
    assert "compile" not in added  # --no-compile wins
    # Compiling takes minutes the first time: not for runs too short to win them back.
    for extra, compiled in (({"steps": auto.COMPILE_FROM_STEPS - 1}, False),
                            ({"steps": auto.COMPILE_FROM_STEPS}, True),
                            ({"epochs": 100}, False),  # 5 images: 100 steps
                            ({"epochs": auto.COMPILE_FROM_STEPS}, True)):
        added, _ = suggest({"data": str(folder), "resolution": 64, **extra}, on_gpu=False)
        assert added.get("compile", False) is compiled, extra


def test_cpu_compiler_available_needs_a_compiler_and_python_headers(tmp_path, monkeypatch):
    import sys
    import sysconfig

    from latentstudio.devices import cpu_compiler_available

    (tmp_path / "Python.h").write_text("")
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("CXX", sys.executable)  # any executable stands in for the compiler
    assert cpu_compiler_available()
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert not cpu_compiler_available()
    monkeypatch.setenv("CXX", sys.executable)
    (tmp_path / "Python.h").unlink()
    assert not cpu_compiler_available()


def test_a_folder_below_64_px_gets_dcgan(tmp_path):
    folder = _folder(tmp_path / "imgs", 5)
    added, line = suggest({"data": str(folder), "resolution": 32}, on_gpu=False)
    assert (added["model"], added["width"], added["batch_size"]) == ("dcgan", 32, 32)
    assert "5 images at 32 px: dcgan (FastGAN needs 64-1024 px)" in line


def test_built_in_data_and_an_explicit_model_are_left_alone(tmp_path, capsys):
    assert suggest({"data": "shapes:64", "resolution": 64}, on_gpu=False) is None
    folder = _folder(tmp_path / "imgs", 3)
    assert main(["train", "--model", "dcgan", "--data", str(folder), "--resolution", "64",
                 "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["model"] == "dcgan" and "no --model given" not in err


def test_lite0_distance_is_zero_for_equal_images_and_grows_with_noise():
    pytest.importorskip("efficientnet_lite_pytorch")
    from latentstudio.train.perceptual import Lite0Distance

    torch.manual_seed(0)
    dist = Lite0Distance()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    small = dist(x, x + 0.05 * torch.randn_like(x))
    large = dist(x, x + 0.5 * torch.randn_like(x))
    assert dist(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert 0 < small.item() < large.item()
    assert not any(p.requires_grad for p in dist.parameters())


def test_fastgan_trains_with_the_perceptual_reconstruction(tmp_path, one_thread):
    pytest.importorskip("efficientnet_lite_pytorch")
    from latentstudio.train.loop import train

    cfg = TrainConfig(model="fastgan", data="shapes:16", resolution=64, width=4, batch_size=4,
                      latent_dim=8, steps=2, log_every=1, preview_count=4, device="cpu",
                      family_settings={"recon_loss": "lite0"}, out=str(tmp_path / "run"))
    run = train(cfg, progress=False)
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    recon = [r["recon"] for r in records if "recon" in r]
    assert recon and all(v > 0 for v in recon)
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["family_settings"]["recon_loss"] == "lite0"


def test_the_fastgan_demo_preset_is_a_valid_fastgan_run():
    cfg = TrainConfig(**DEMO_FASTGAN)
    assert cfg.model == "fastgan" and cfg.resolution == 64


def test_fewshot_benchmark_quick(tmp_path):
    """dcgan and fastgan, and lightweight-gan where it is installed (tests/train/test_lwgan.py)."""
    models = ["dcgan", "fastgan"] + ["lightweight-gan"] * bool(find_spec("lightweight_gan"))
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "fewshot_quality.py"), "--quick",
                           "--minutes", "0.05", "--out", str(tmp_path),
                           "--models", ",".join(models)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "fewshot_quality_quick.json").read_text())
    assert list(result["models"]) == models
    for row in result["models"].values():
        assert row["train"]["steps"] > 0
        for extractor in ("lite0", "domain"):
            assert row["scores"][extractor]["fid"] >= 0
        assert (tmp_path / row["grid"]).is_file()
    assert "| fastgan |" in (tmp_path / "fewshot_quality_quick.md").read_text()
