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


def test_a_parent_of_another_shape_is_named_with_its_size(tiny_run, tmp_path, capsys) -> None:
    wide = tiny_run("dcgan", name="wide", resolution="32x16", steps=1)
    out = tmp_path / "child"
    base = ["train", "--init-from", str(wide), "--data", "shapes:32", "--steps", "1", "--out", str(out)]
    err = one_line_error([*base, "--resolution", "32"], capsys)  # same width, other height
    assert "it is a dcgan at 32x16 px, this run is a dcgan at 32 px; drop the flags" in err
    fast = tiny_run("fastgan", name="fastgan-wide", resolution="96x64", width=4, batch_size=4, steps=1)
    base[2] = str(fast)
    err = one_line_error([*base, "--resolution", "128"], capsys)
    assert ("it is a fastgan at 96x64 px, this run is a fastgan at 128 px; a run grows to a "
            "larger size of the same shape, e.g. --resolution 192x128") in err
    assert not out.exists()


def test_gallery_shows_the_lineage(tiny_run, tmp_path, one_thread) -> None:
    from latentstudio.web.runs import runs_page_html, summarize

    parent = tiny_run("dcgan", name="parent-ema", **PARENT)
    child = _child(parent, tmp_path / "child", ema=0.9)
    linked = summarize(tmp_path, child)["parent"]
    assert linked == {"name": "parent-ema", "link": None, "step": 4,  # not in this gallery
                      "grown_from": None}
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


# ----- growing: --init-from a smaller run of a family that can grow (fastgan)
def _grown(tiny_run, tmp_path: Path, callbacks=(), size: int = 256, **settings) -> tuple[Path, Path]:
    parent = tiny_run("fastgan", name="fastgan-64", resolution=64, width=4, batch_size=8, steps=2)
    cfg = TrainConfig(**{**dict(model="fastgan", data="shapes:32", resolution=size, width=4,
                                latent_dim=16, batch_size=4, steps=1, preview_count=4,
                                device="cpu", init_from=str(parent), out=str(tmp_path / "grown")),
                         **settings})
    return parent, train(cfg, callbacks=callbacks, progress=False)


def test_a_grown_generator_starts_with_the_smaller_runs_pictures(tiny_run, tmp_path, one_thread,
                                                                capsys) -> None:
    from latentstudio.runs import load_run

    seen = AtStart()
    parent, child = _grown(tiny_run, tmp_path, [seen])
    assert "growing" in capsys.readouterr().err
    small = load_run(parent).image_network.eval()
    big = load_run(child).image_network.eval()  # the family rebuilds it with its base image
    big.load_state_dict(seen.weights["generator"])
    assert big.grown_from == 64 and float(big.own_gain) == 0
    drawn = {}
    small.to_image.register_forward_hook(lambda m, i, out: drawn.__setitem__("small", out))
    big.base_image.register_forward_hook(lambda m, i, out: drawn.__setitem__("base", out))
    z = torch.randn(3, 16)
    with torch.no_grad():
        image = big(z)
        small(z)
    assert image.shape == (3, 3, 256, 256)
    assert torch.equal(drawn["base"], drawn["small"])
    upsampled = torch.nn.functional.interpolate(drawn["small"], size=(256, 256), mode="bilinear")
    assert torch.allclose(image, torch.tanh(upsampled), atol=1e-6)
    meta = json.loads((child / "config.json").read_text())
    assert meta["parent"]["grown_from"] == 64
    from latentstudio.web.runs import summarize

    assert summarize(tmp_path, child)["parent"]["grown_from"] == 64
    assert meta["model_config"]["family_settings"]["grown_from"] == 64


def test_both_grown_generators_start_from_the_smaller_runs_average(tiny_run, tmp_path,
                                                                  one_thread) -> None:
    seen = AtStart()
    parent = tiny_run("fastgan", name="fastgan-64-ema", resolution=64, width=4, batch_size=8,
                      steps=2, ema=0.5)
    train(TrainConfig(model="fastgan", data="shapes:32", resolution=128, width=4, latent_dim=16,
                      batch_size=4, steps=1, preview_count=4, device="cpu", ema=0.5,
                      init_from=str(parent), out=str(tmp_path / "grown")),
          callbacks=[seen], progress=False)
    saved = load_checkpoint(parent / "checkpoints" / "last.pt")["models"]
    raw, average = saved["generator"], saved["generator_ema"]
    moved = {k for k in raw if k.startswith(("init.", "ups.")) and k.endswith(("original", "bias"))}
    assert moved and any(not torch.equal(raw[k], average[k]) for k in moved)
    for name in ("generator", "generator_ema"):
        for key in moved:
            assert torch.equal(seen.weights[name][key], average[key]), (name, key)


def test_the_discriminator_keeps_the_smaller_runs_blocks_by_map_side(tiny_run, tmp_path,
                                                                     one_thread) -> None:
    seen = AtStart()
    parent, _ = _grown(tiny_run, tmp_path, [seen])
    small = load_checkpoint(parent / "checkpoints" / "last.pt")["models"]["discriminator"]
    big = seen.weights["discriminator"]
    # 64 px: maps of 64, 32, 16, 8 px; 256 px: 256 ... 8, so block i there is block i + 2 here.
    for key, value in small.items():
        for prefix, moved in (("downs.", 2), ("sles.", 2)):
            if key.startswith(prefix):
                index, rest = key[len(prefix):].split(".", 1)
                assert torch.equal(big[f"{prefix}{int(index) + moved}.{rest}"], value), key
    assert torch.equal(big["rf_big.0.parametrizations.weight.original"],
                       small["rf_big.0.parametrizations.weight.original"])
    # The small path sees 128 px here, 32 there: the 16 -> 8 px block is index 4 here, 2 there.
    assert torch.equal(big["from_small.4.0.parametrizations.weight.original"],
                       small["from_small.2.0.parametrizations.weight.original"])


def test_a_grown_run_resumes_and_cannot_be_grown_again(tiny_run, tmp_path, capsys) -> None:
    parent, child = _grown(tiny_run, tmp_path, size=128)
    assert main(["train", "--resume", str(child), "--steps", "2"]) == 0
    assert load_checkpoint(child / "checkpoints" / "last.pt")["progress"]["step"] == 2
    capsys.readouterr()
    err = one_line_error(["train", "--init-from", str(child), "--data", "shapes:32",
                          "--resolution", "256", "--steps", "1", "--out",
                          str(tmp_path / "again")], capsys)
    assert "cannot grow a run that was itself grown (from 64 px)" in err
    assert not (tmp_path / "again").exists()
    err = one_line_error(["train", "--init-from", str(parent), "--data", "shapes:32",
                          "--resolution", "128x256", "--steps", "1", "--out",
                          str(tmp_path / "wide")], capsys)
    assert "cannot start from" in err and not (tmp_path / "wide").exists()


def test_a_grown_run_holds_the_smaller_runs_stages_unless_told(tiny_run, tmp_path,
                                                                one_thread) -> None:
    def changed(**settings) -> set[str]:
        seen = AtStart()
        _, child = _grown(tiny_run, tmp_path / str(len(settings)), [seen], size=128, steps=2,
                          **settings)
        after = load_checkpoint(child / "checkpoints" / "last.pt")["models"]["generator"]
        return {k for k, v in seen.weights["generator"].items()
                if k.endswith("original") and not torch.equal(v, after[k])}

    held = ("init.", "ups.8.", "ups.16.", "ups.32.", "ups.64.", "sles.64.")
    trained = changed()
    assert not [k for k in trained if k.startswith(held)]
    for new in ("ups.128.", "sles.128.", "to_image.", "base_image."):
        assert [k for k in trained if k.startswith(new)], new
    assert [k for k in changed(family_settings={"hold_grown": False}) if k.startswith(held)]
