"""`train --init-from RUN`: a new run that starts from RUN's weights with fresh optimisers."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from cli_checks import one_line_error

from latentstudio.cli import main
from latentstudio.runs import load_checkpoint
from latentstudio.train.callbacks import Callback
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

# Settings the parent uses that differ from the defaults, so inheriting them is visible.
PARENT = dict(width=8, latent_dim=16, ema=0.9)


class AtStart(Callback):
    """Keeps copies of the networks' weights and the optimisers' state at the first step."""

    def on_train_start(self, trainer) -> None:
        self.step = trainer.step
        self.weights = {name: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                        for name, net in trainer._networks().items()}
        self.optimizers = {k: v["state"] for k, v in trainer.updater.state_dict().items()
                           if k.startswith("opt_")}


def _child(parent: Path, out: Path, callbacks=(), **settings) -> Path:
    cfg = TrainConfig(data="shapes:32", resolution=32, width=8, latent_dim=16, batch_size=16,
                      steps=1, preview_count=4, device="cpu", init_from=str(parent), out=str(out),
                      **settings)
    return train(cfg, callbacks=callbacks, progress=False)


def test_networks_start_equal_to_the_parents_checkpoint(tiny_run, tmp_path, one_thread) -> None:
    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    saved = load_checkpoint(parent / "checkpoints" / "last.pt")
    assert saved["progress"]["step"] == 4 and saved["step_state"]["opt_g"]["state"]
    seen = AtStart()
    child = _child(parent, tmp_path / "child", [seen], ema=0.9)
    assert seen.step == 0
    assert set(seen.weights) == {"generator", "discriminator", "generator_ema"}
    for name, state in seen.weights.items():
        for key, value in state.items():
            assert torch.equal(value, saved["models"][name][key]), f"{name}.{key}"
    assert seen.optimizers and all(state == {} for state in seen.optimizers.values())
    parent_record = json.loads((child / "config.json").read_text())["parent"]
    assert parent_record["run"] == str(parent.resolve())
    assert parent_record["step"] == 4 and parent_record["checkpoint"] == "last"
    assert parent_record["data"]["spec"] == "shapes:64"


def test_without_init_from_the_networks_differ(tiny_run, tmp_path, one_thread) -> None:
    """The check above can fail: a new run's own initialisation is not the parent's."""
    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    saved = load_checkpoint(parent / "checkpoints" / "last.pt")
    seen = AtStart()
    cfg = TrainConfig(data="shapes:32", width=8, latent_dim=16, batch_size=16, steps=1,
                      preview_count=4, device="cpu", ema=0.9, out=str(tmp_path / "fresh"))
    train(cfg, callbacks=[seen], progress=False)
    weight = next(iter(saved["models"]["generator"]))
    assert not torch.equal(seen.weights["generator"][weight], saved["models"]["generator"][weight])


def test_the_average_starts_at_the_generator_of_a_parent_without_one(tiny_run, tmp_path,
                                                                        one_thread) -> None:
    parent = tiny_run("dcgan", name="parent", width=8, latent_dim=16)
    saved = load_checkpoint(parent / "checkpoints" / "last.pt")["models"]["generator"]
    seen = AtStart()
    _child(parent, tmp_path / "child", [seen], ema=0.9)
    for key, value in seen.weights["generator_ema"].items():
        assert torch.equal(value, saved[key]), key


def test_command_line_takes_the_parents_model_settings(tiny_run, tmp_path, capsys) -> None:
    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    assert main(["train", "--init-from", str(parent), "--data", "shapes:32", "--lr", "1e-4",
                 "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["width"] == 8 and resolved["latent_dim"] == 16 and resolved["ema"] == 0.9
    assert resolved["lr"] == 1e-4 and resolved["data"] == "shapes:32"  # given: its own
    assert resolved["init_from"] == str(parent)


def test_fine_tune_then_resume(tiny_run, tmp_path, one_thread, capsys) -> None:
    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    child = tmp_path / "child"
    assert main(["train", "--init-from", f"{parent}:last", "--data", "shapes:32", "--steps", "1",
                 "--out", str(child)]) == 0
    assert main(["train", "--resume", str(child), "--steps", "2"]) == 0
    assert load_checkpoint(child / "checkpoints" / "last.pt")["progress"]["step"] == 2
    meta = json.loads((child / "config.json").read_text())
    assert meta["parent"]["run"] == str(parent.resolve()) and meta["config"]["width"] == 8


def test_other_shapes_fail_in_one_line_and_write_nothing(tiny_run, tmp_path, capsys) -> None:
    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    out = tmp_path / "child"
    base = ["train", "--init-from", str(parent), "--data", "shapes:32", "--steps", "1",
            "--out", str(out)]
    err = one_line_error([*base, "--resolution", "64"], capsys)
    assert f"cannot start from {parent}: it is a dcgan at 32 px, this run is a dcgan at 64 px" in err
    err = one_line_error([*base, "--width", "16"], capsys)
    assert "with width 8, this run is a dcgan at 32 px with width 16" in err
    err = one_line_error([*base, "--model", "vae-conv"], capsys)
    assert "this run is a vae-conv at 32 px" in err
    err = one_line_error([*base[:2], f"{parent}:best", *base[3:]], capsys)
    assert "best.pt" in err
    err = one_line_error([*base[:2], str(tmp_path / "nowhere"), *base[3:]], capsys)
    assert "is not a run folder" in err
    assert not out.exists()


def test_gallery_shows_the_lineage(tiny_run, tmp_path, one_thread) -> None:
    from latentstudio.web.runs import runs_page_html, summarize

    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    child = _child(parent, tmp_path / "child", ema=0.9)
    linked = summarize(tmp_path, child)["parent"]
    assert linked == {"name": "parent-ema", "link": None, "step": 4}  # not in this gallery
    (tmp_path / "parent-ema").mkdir()
    assert summarize(tmp_path, child)["parent"]["link"] == "parent-ema"
    assert "from parent-ema" in runs_page_html(tmp_path)
    assert summarize(tmp_path, tmp_path / "parent-ema")["parent"] is None


def test_a_config_file_may_name_the_parent(tiny_run, tmp_path, capsys) -> None:
    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    settings = tmp_path / "fine-tune.toml"
    settings.write_text(f'init_from = "{parent}"\ndata = "shapes:32"\n')
    assert main(["train", "--config", str(settings), "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["width"] == 8 and resolved["latent_dim"] == 16 and resolved["data"] == "shapes:32"
