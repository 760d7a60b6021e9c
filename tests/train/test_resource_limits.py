"""Settings the machine cannot hold are refused before anything is allocated; a batch larger than
the data is used at the data's size, said once and recorded."""

import json
from pathlib import Path

import torch

from latentstudio.cli import main
from latentstudio.models import get_family
from latentstudio.train.config import TrainConfig, model_config_for, resolve_config

TINY_FLAGS = ["--data", "shapes:96", "--batch-size", "16", "--latent-dim", "16",
              "--preview-count", "4", "--seed", "3"]


def test_a_width_that_cannot_fit_is_refused_with_what_fits(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--width", "20000", "--steps", "1", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--width 20000" in err and "fits" in err, err
    assert not run.exists()
    fits = int(err.split("--width ")[-1].split()[0])
    from latentstudio.train.memory import check_model_fits, parameter_count

    family = get_family("dcgan")
    cfg = resolve_config(TrainConfig(width=fits), family)
    mc = model_config_for(cfg, family, 3, 0)
    memory = 16 * parameter_count(family, mc)
    check_model_fits(cfg, family, mc, torch.device("cpu"), capacity=memory)  # the advice is true


def test_a_batch_larger_than_the_data_is_warned_once_and_recorded(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    flags = ["--data", "shapes:40", "--width", "8", "--latent-dim", "16", "--preview-count", "4"]
    assert main(["train", *flags, "--batch-size", "64", "--epochs", "2", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert err.count("--batch-size 64 is more than the 40 images") == 1, err
    assert json.loads((run / "config.json").read_text())["config"]["batch_size"] == 40
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert "--batch-size" not in capsys.readouterr().err
