"""What `pip install latentstudio` brings: MP4 writing works without an extra."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_mp4_writer_is_a_core_dependency() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    names = {re.split(r"[<>=;\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert "imageio-ffmpeg" in names
    # The old extra still installs, so existing install lines keep working.
    assert "video" in project["optional-dependencies"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=;\[ ]", d, maxsplit=1)[0].lower() for d in requirements}


def test_export_is_core_and_onnx_and_tensorboard_are_extras() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    core, extras = _names(project["dependencies"]), project["optional-dependencies"]
    assert "safetensors" in core  # `latentstudio export` and `latentstudio.load`
    assert not core & {"onnx", "onnxruntime", "onnxscript", "tensorboard"}
    assert _names(extras["onnx"]) >= {"onnx", "onnxruntime"}
    assert _names(extras["tensorboard"]) == {"tensorboard"}
    # CI installs [test]: the ONNX round trip and the tb/ logs are tested there.
    assert _names(extras["test"]) >= {"onnx", "onnxruntime", "tensorboard"}


def test_training_without_tensorboard_says_how_to_get_it(tmp_path, capsys, monkeypatch,
                                                         one_thread) -> None:
    from latentstudio.train.config import TrainConfig
    from latentstudio.train.loop import train

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    run = train(TrainConfig(data="shapes:16", width=8, latent_dim=8, batch_size=8, steps=1,
                            preview_count=4, device="cpu", out=str(tmp_path / "run")),
                progress=False)
    notes = [line for line in capsys.readouterr().err.splitlines() if "TensorBoard" in line]
    assert notes == [f"note: no TensorBoard logs in {run / 'tb'} (pip install "
                     "'latentstudio[tensorboard]' to write them)"]
    assert not (run / "tb").exists() and (run / "checkpoints" / "last.pt").is_file()
