"""`latentstudio export` and `latentstudio.load`: a model folder that samples like the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import one_line_error
from PIL import Image

import latentstudio
from latentstudio.cli import main
from latentstudio.errors import UserError
from latentstudio.export import ImageGenerator, export_run, onnx_difference, onnx_export
from latentstudio.models import ModelConfig, get_family
from latentstudio.runs import load_checkpoint

EMA = dict(ema=0.9)


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> tuple[Path, Path]:
    """(run, export folder) of a tiny DCGAN trained with an EMA generator."""
    run = tiny_run("dcgan", name="ema", **EMA)
    out = tmp_path_factory.mktemp("export") / "model"
    export_run(run, out)
    return run, out


def test_folder_holds_config_weights_samples_and_card(exported) -> None:
    run, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json",
                                                      "model.safetensors", "samples.png"]
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["kind"], config["resolution"], config["channels"],
            config["latent_size"]) == ("dcgan", "gan", 32, 3, 16)
    assert config["data"]["spec"] == "shapes:64" and config["training"]["step"] == 4
    assert config["ema"] is True and config["latentstudio_version"] == latentstudio.__version__
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: latentstudio\ntags:\n- latentstudio\n")
    assert "![16 samples, seed 0](samples.png)" in card and "`shapes:64`" in card
    assert "latentstudio.load(" in card
    assert Image.open(out / "samples.png").size[0] >= 128


def test_weights_are_the_ema_generator(exported) -> None:
    from safetensors.torch import load_file

    run, out = exported
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["models"]
    weights = load_file(str(out / "model.safetensors"))
    assert weights.keys() == saved["generator_ema"].keys()
    assert all(torch.equal(weights[k], saved["generator_ema"][k]) for k in weights)
    assert not all(torch.equal(weights[k], saved["generator"][k]) for k in weights)


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_samples_equal_the_sample_command(model, tiny_run, tmp_path, capsys) -> None:
    run = tiny_run(model, name="ema" if model == "dcgan" else None,
                   **(EMA if model == "dcgan" else {}))
    export_run(run, tmp_path / "model")
    assert main(["sample", str(run), "--n", "6", "--seed", "5", "--size", "native",
                 "--out", str(tmp_path / "singles") + "/"]) == 0
    written = [np.asarray(Image.open(tmp_path / "singles" / f"seed5_{i:04d}.png"))
               for i in range(6)]
    from latentstudio.explore.vectors import generate
    from latentstudio.runs import load_run

    loaded = load_run(run)
    expected = generate(loaded, loaded.latents(6, 5), loaded.labels_for(6, None, 5))
    for source in (tmp_path / "model", run):
        images = latentstudio.load(source).sample(6, seed=5)
        assert torch.equal(images, expected)
        from latentstudio.images import to_pil

        assert all(np.array_equal(np.asarray(to_pil(img)), png)
                   for img, png in zip(images, written, strict=True))


def test_interpolate_runs_between_the_two_seeds(exported) -> None:
    model = latentstudio.load(exported[1])
    frames = model.interpolate(3, 7, steps=5)
    assert frames.shape == (5, 3, 32, 32) and frames.min() >= -1 and frames.max() <= 1
    assert torch.allclose(frames[0], model.sample(1, seed=3)[0], atol=1e-5)
    assert torch.allclose(frames[-1], model.sample(1, seed=7)[0], atol=1e-5)
    assert model.to("cpu") is model


def test_load_does_not_import_the_training_code(exported) -> None:
    run, out = exported
    code = ("import sys, latentstudio\n"
            "for path in sys.argv[1:]:\n"
            "    m = latentstudio.load(path)\n"
            "    assert m.sample(2, seed=1).shape == (2, 3, 32, 32)\n"
            "    m.interpolate(0, 1, 3)\n"
            "print(sorted(n for n in sys.modules if n.startswith('latentstudio.train')))\n")
    src = str(Path(latentstudio.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(out), str(run)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bad_paths_and_existing_exports_fail_in_one_line(exported, tmp_path, capsys) -> None:
    run, out = exported
    assert "already holds an export" in one_line_error(["export", str(run), "--out", str(out)], capsys)
    err = one_line_error(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "x")], capsys)
    assert "not a latentstudio run folder" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="neither a latentstudio export"):
        latentstudio.load(tmp_path)


def test_run_commands_given_an_export_name_the_run_it_came_from(exported, tmp_path, capsys) -> None:
    from latentstudio.metrics.compare import looks_like_run
    from latentstudio.web.runs import list_runs

    run, out = exported
    said = f"{out} is an exported model, not a run folder: load it in Python with " \
           f"latentstudio.load('{out}'), or give this command the run it came from ({run.resolve()})"
    for argv in (["sample", str(out), "--out", str(tmp_path / "s.png")],
                 ["interpolate", str(out), "--seeds", "1,2", "--out", str(tmp_path / "w.gif")],
                 ["train", "--resume", str(out), "--steps", "9"],
                 ["train", "--init-from", str(out), "--steps", "1", "--out", str(tmp_path / "r")]):
        assert said in one_line_error(argv, capsys)
    assert not looks_like_run(out) and looks_like_run(run)
    assert list_runs(out.parent) == []  # the gallery lists runs, not exports


# ----- ONNX

def _fresh(model: str, resolution: int = 32, classes: int = 0) -> ImageGenerator:
    """An untrained generator of `model` (weights from a fixed seed), as `load` returns one."""
    family = get_family(model)
    config = ModelConfig(resolution=resolution, channels=3, latent_dim=16, width=8,
                         num_classes=classes)
    torch.manual_seed(0)
    network = family.build(config)[family.hooks.image_module].eval().requires_grad_(False)
    return ImageGenerator(network, family, config, {}, Path("."))


@pytest.mark.parametrize("model, resolution, classes", [
    ("cgan", 32, 3), ("vae-conv", 32, 0),
    ("fastgan", 64, 0),  # spectral norm folded into the weights
])
def test_onnx_matches_pytorch(model, resolution, classes, one_thread) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    gen = _fresh(model, resolution, classes)
    data = onnx_export(gen)
    difference = onnx_difference(data, gen, n=5, seed=4)  # another batch size than traced
    print(f"{model}: max |onnxruntime - PyTorch| = {difference:.2e}")
    assert difference is not None and difference <= 1e-4


def test_onnx_export_of_a_run(exported, tmp_path, capsys) -> None:
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    run, _ = exported
    assert main(["export", str(run), "--out", str(tmp_path / "m"), "--format", "onnx"]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    model = latentstudio.load(tmp_path / "m")
    z = model.latents(7, seed=2)
    images = torch.from_numpy(session.run(["images"], {"z": z.numpy()})[0])
    difference = float((images - model.sample(7, seed=2)).abs().max())
    print(f"dcgan run: max |onnxruntime - PyTorch| = {difference:.2e}")
    assert difference <= 1e-4
    assert "model.onnx" in (tmp_path / "m" / "README.md").read_text()


def test_cppn_exports_and_a_graph_that_fails_its_check_is_refused(one_thread, monkeypatch) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert onnx_export(_fresh("cppn-gan"))  # checked against PyTorch on another batch size
    # A graph that fixed the batch size makes onnxruntime fail on another one: refused.
    monkeypatch.setattr("latentstudio.export.onnx_difference", lambda *a, **k: None)
    with pytest.raises(UserError, match="cannot be exported to ONNX yet"):
        onnx_export(_fresh("cppn-gan"))


def test_missing_onnx_says_how_to_install_it(exported, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    run, _ = exported
    err = one_line_error(["export", str(run), "--out", str(tmp_path / "m"), "--format", "onnx"],
                         capsys)
    assert "pip install 'latentstudio[onnx]'" in err
    assert not (tmp_path / "m").exists()
