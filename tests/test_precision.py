"""latentstudio.precision: how `auto` resolves on CPUs with and without native bf16, and that on
a CPU without it nothing changes (training, estimate, features, DeepDream)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

from latentstudio import precision
from latentstudio.precision import (
    CPU_BF16_ENV,
    cpu_has_native_bf16,
    describe_precision,
    resolve_precision,
)
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import Trainer, train

TINY = dict(data="shapes:32", resolution=32, batch_size=8, width=8, latent_dim=8, steps=4,
            log_every=1, preview_every=100, preview_count=4, seed=3, device="cpu")


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.delenv(CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.delenv(CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))


def test_capability_comes_from_the_flags_and_the_variable_overrides_it(monkeypatch) -> None:
    monkeypatch.delenv(CPU_BF16_ENV, raising=False)
    for flags, native in (({"avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True),
                          ({"avx512f", "avx512_vnni"}, False), (set(), False)):
        monkeypatch.setattr(precision, "cpu_flags", lambda f=flags: frozenset(f))
        assert cpu_has_native_bf16() is native, flags
        monkeypatch.setenv(CPU_BF16_ENV, "0")
        assert not cpu_has_native_bf16()
        monkeypatch.setenv(CPU_BF16_ENV, "1")
        assert cpu_has_native_bf16()
        monkeypatch.delenv(CPU_BF16_ENV)


def test_cpu_flags_reads_this_machine() -> None:
    flags = precision.cpu_flags()
    if Path("/proc/cpuinfo").is_file():
        assert flags  # every Linux CPU lists some flags


def test_auto_on_cpu_is_bf16_only_with_native_bf16(native_bf16, monkeypatch) -> None:
    assert resolve_precision("auto", "cpu", "train") == "bf16"
    assert resolve_precision("auto", torch.device("cpu"), "features") == "bf16"
    assert "avx512_bf16" in describe_precision("auto", "cpu")
    monkeypatch.setattr(precision, "CPU_BF16_FASTER", {**precision.CPU_BF16_FASTER, "dream": False})
    assert resolve_precision("auto", "cpu", "dream") == "fp32"
    assert "not faster for dream" in describe_precision("auto", "cpu", "dream")
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f"}))
    assert resolve_precision("auto", "cpu", "train") == "fp32"
    assert "no native bf16" in describe_precision("auto", "cpu")


def test_explicit_precision_is_kept(no_bf16) -> None:
    for p in ("fp32", "bf16", "fp16"):
        assert resolve_precision(p, "cpu") == p
        assert resolve_precision(p, "cuda") == p
    assert precision.autocast_dtype("bf16", "cpu") is torch.bfloat16
    assert precision.autocast_dtype("fp32", "cpu") is None


def test_auto_on_cuda_is_unchanged(native_bf16) -> None:
    expected = "bf16" if not torch.cuda.is_available() or torch.cuda.is_bf16_supported() else "fp16"
    assert resolve_precision("auto", "cuda") == expected
    assert precision.autocast_dtype("auto", torch.device("cuda")) == \
        {"bf16": torch.bfloat16, "fp16": torch.float16}[expected]
    assert isinstance(precision.cpu_autocast("cuda", "dream"), contextlib.nullcontext)


def _losses(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k.startswith(("loss", "d_"))}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_without_native_bf16_auto_trains_exactly_as_fp32(no_bf16, tmp_path: Path, capsys) -> None:
    auto = train(TrainConfig(**TINY, precision="auto", out=str(tmp_path / "auto")), progress=False)
    fp32 = train(TrainConfig(**TINY, precision="fp32", out=str(tmp_path / "fp32")), progress=False)
    assert _losses(auto) == _losses(fp32)
    meta = json.loads((auto / "config.json").read_text())
    assert meta["config"]["precision"] == "auto" and meta["resolved_precision"] == "fp32"


def test_with_native_bf16_auto_trains_in_bf16_and_says_so(native_bf16, tmp_path: Path, capsys) -> None:
    trainer = Trainer(TrainConfig(**TINY, precision="auto"), tmp_path, progress=False)
    assert trainer.updater.dtype is torch.bfloat16 and trainer.updater.precision == "bf16"
    run = train(TrainConfig(**TINY, out=str(tmp_path / "run")), progress=True)
    assert json.loads((run / "config.json").read_text())["resolved_precision"] == "bf16"
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("precision: bf16 autocast") and "avx512_bf16" in first


def test_memory_estimate_follows_training(no_bf16, monkeypatch) -> None:
    from latentstudio.train.memory import simulation_precision

    assert simulation_precision("auto", "cpu") == "fp32"
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert simulation_precision("auto", "cpu") == "bf16"
    assert simulation_precision("fp32", "cpu") == "fp32"


def test_without_native_bf16_features_are_fp32_and_share_the_cache(no_bf16) -> None:
    from latentstudio.data.shapes import make_shapes
    from latentstudio.metrics.extractors import build_extractor

    data = make_shapes(64, 32, 3, seed=0)
    fp32 = build_extractor("domain", data, "cpu", progress=False, precision="fp32")
    auto = build_extractor("domain", data, "cpu", progress=False, precision="auto")
    assert auto.precision == "fp32" and auto.cache_id == fp32.cache_id
    x = data.images[:8]
    assert torch.equal(auto(x), fp32(x))


def test_bf16_features_get_their_own_cache_and_stay_close(native_bf16) -> None:
    from latentstudio.data.shapes import make_shapes
    from latentstudio.metrics.extractors import build_extractor

    data = make_shapes(64, 32, 3, seed=0)
    fp32 = build_extractor("domain", data, "cpu", progress=False, precision="fp32")
    bf16 = build_extractor("domain", data, "cpu", progress=False, precision="auto")
    assert bf16.precision == "bf16" and bf16.cache_id == fp32.cache_id + "-bf16"
    x = data.images[:8]
    a, b = fp32(x), bf16(x)
    assert b.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.99


def test_without_native_bf16_dream_gradients_are_fp32(no_bf16) -> None:
    from torch import nn

    from latentstudio.dream.deepdream import gradient

    class Objective(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
            y = self.conv(x)
            return (y ** 2).mean(), y.numel()

    torch.manual_seed(0)
    objective = Objective()
    image = torch.rand(1, 3, 16, 16)
    out = torch.empty_like(image)
    gradient(image, objective, out)
    x = image.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(objective(x)[0], x)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-8)
