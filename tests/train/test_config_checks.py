"""Training settings a user can get wrong, from flags or from a hand-edited config.json: one
`error:` line, exit 2, nothing trained or written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_checks import one_line_error, train_refuses

from latentstudio.cli import main


@pytest.mark.parametrize("flags, message", [
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--betas", "2,3"], "--betas must be two numbers in [0, 1)"),
    (["--instance-noise", "nan"], "--instance-noise must be a finite number"),
])
def test_bad_numbers_are_refused_before_training(flags: list[str], message: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    train_refuses(flags, message, tmp_path / "run", capsys)


@pytest.mark.parametrize("key, value, message", [
    ("resolution", "abc", "--resolution must be a size in pixels like 64 (square) or 64x128"),
    ("resolution", [64, 128], "setting resolution must be a whole number or text, got [64, 128]"),
    ("lr", "fast", "setting lr must be a number"),
    ("ema", True, "setting ema must be a number"),
    ("augment", 3, "--augment must be one of"),
])
def test_a_config_json_with_wrong_types_is_one_line(key: str, value: object, message: str,
                                                    tiny_run, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run("dcgan"), run)
    meta = json.loads((run / "config.json").read_text())
    meta["config"][key] = value
    (run / "config.json").write_text(json.dumps(meta))
    before = (run / "checkpoints" / "last.pt").read_bytes()
    assert message in one_line_error(["sample", str(run), "--out", str(tmp_path / "s.png")], capsys)
    assert message in one_line_error(["train", "--resume", str(run), "--steps", "8"], capsys)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_a_config_file_with_wrong_types_is_one_line(tmp_path: Path, capsys) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('resolution = "big"\n')
    assert "--resolution must be a size in pixels" in one_line_error(
        ["train", "--config", str(settings), "--dry-run"], capsys)
    assert main(["train", "--model", "dcgan", "--dry-run"]) == 0


@pytest.mark.parametrize("flags, message", [
    (["--model", "vae-conv", "--augment", "ada"],
     "--augment only applies to gan models (cgan, cppn-gan, dcgan, fastgan, gan-dense, wgan, "
     "wgan-gp); vae-conv is a vae: drop it"),
    (["--model", "vae-dense", "--r1", "1"], "--r1 only applies to gan models"),
    (["--model", "vae-conv", "--spectral-norm"], "--spectral-norm only applies to gan models"),
    (["--model", "fastgan", "--beta", "4"],
     "--beta only applies to vae models (vae-conv, vae-dense); fastgan is a gan: drop it"),
    (["--kl-warmup", "100"], "--kl-warmup only applies to vae models"),  # dcgan by default
])
def test_a_setting_of_another_kind_of_model_is_refused(flags: list[str], message: str,
                                                       tmp_path: Path, capsys) -> None:
    train_refuses(flags, message, tmp_path / "run", capsys)


def test_a_setting_of_another_kind_left_at_its_default_is_allowed(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('augment = "none"\nspectral_norm = false\n')  # e.g. a shared file
    assert main(["train", "--model", "vae-conv", "--config", str(settings), "--dry-run"]) == 0
    assert main(["train", "--model", "dcgan", "--beta", "1.0", "--dry-run"]) == 0
