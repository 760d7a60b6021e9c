"""The memory estimate: its byte counting, its parts, batch scaling, max batch, and the command."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from latentstudio.cli import main
from latentstudio.errors import UserError
from latentstudio.models import get_family
from latentstudio.train.config import TrainConfig, model_config_for, resolve_config
from latentstudio.train.memory import (
    LiveBytes,
    estimate_memory,
    format_bytes,
    max_batch_size,
    parse_bytes,
    step_memory,
)

TINY = dict(resolution=32, width=8, latent_dim=8, batch_size=8)


def test_live_bytes_counts_storages_rounded_like_the_cuda_allocator() -> None:
    with LiveBytes() as live:
        x = torch.empty(1000, 1000)  # 4,000,000 bytes -> 7813 blocks of 512
        assert live.current == 7813 * 512
        y = x * 2
        view = y[::2]  # a view allocates nothing
        assert live.current == 2 * 7813 * 512
        del y, view
        assert live.current == 7813 * 512 and live.peak == 2 * 7813 * 512
        torch.ones(3)  # 12 bytes still take a block, freed at once
        assert live.current == 7813 * 512 and live.peak == 2 * 7813 * 512
        del x
        assert live.current == 0


@pytest.mark.parametrize("model,precision", [("dcgan", "fp32"), ("dcgan", "bf16"),
                                             ("wgan-gp", "fp32"), ("vae-conv", "fp32")])
def test_fake_simulation_equals_a_real_cpu_step(model: str, precision: str) -> None:
    # n_critic=1 keeps it short; wgan-gp still runs its gradient penalty (double backward).
    cfg = TrainConfig(model=model, precision=precision, n_critic=1, **TINY)
    est = estimate_memory(cfg, device_type="cpu")
    family = get_family(model)
    resolved = resolve_config(cfg, family)
    real = step_memory(resolved, model_config_for(resolved, family, 3, 10), device_type="cpu")
    assert est.peak_allocated == real["peak"]


def test_parts_add_up() -> None:
    cfg = TrainConfig(model="dcgan", ema=0.999, precision="fp32", **TINY)
    est = estimate_memory(cfg, data_count=100)
    family = get_family("dcgan")
    models = family.build(model_config_for(resolve_config(cfg, family), family, 3, 0))
    params = [p for m in models.values() for p in m.parameters()]
    rounded = sum((p.numel() * 4 + 511) // 512 * 512 for p in params)
    assert est.parameters == sum(p.numel() for p in params)
    assert est.gradient_bytes == rounded
    assert 2 * rounded <= est.optimizer_bytes <= 2 * rounded + 512 * len(params)  # + Adam's steps
    g = sum((p.numel() * 4 + 511) // 512 * 512 for p in models["generator"].parameters())
    assert g < est.ema_bytes < g + 512 * 20  # the generator's weights and its BN buffers
    assert est.data_bytes == 100 * 3 * 32 * 32 and est.batch_bytes == 8 * 3 * 32 * 32 * 4
    assert est.peak_allocated == (est.parameter_bytes + est.gradient_bytes + est.optimizer_bytes
                                  + est.ema_bytes + est.activation_bytes + est.batch_bytes
                                  + est.data_bytes)
    assert est.device_total > est.peak_allocated  # context and allocator cache on a GPU


def _saved_bytes(cfg: TrainConfig) -> int:
    """Bytes autograd saves for backward in the discriminator update's forward passes (not the
    weights, not the input batch: the estimate counts those apart)."""
    family = get_family(cfg.model)
    resolved = resolve_config(cfg, family)
    models = family.build(model_config_for(resolved, family, 3, 0))
    real = torch.rand(cfg.batch_size, 3, 32, 32)
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if not isinstance(t, torch.nn.Parameter) and s.data_ptr() != real.data_ptr():
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fake = models["generator"](torch.randn(cfg.batch_size, cfg.latent_dim))
        d = models["discriminator"]
        d(real).sum() + d(fake.detach()).sum()
    return sum(seen.values())


def test_activations_cover_what_autograd_saves_and_scale_with_the_batch() -> None:
    cfg = TrainConfig(model="dcgan", precision="fp32", **{**TINY, "batch_size": 32})
    est = estimate_memory(cfg)
    saved = _saved_bytes(cfg)
    assert saved <= est.activation_bytes <= 3 * saved
    double = estimate_memory(TrainConfig(model="dcgan", precision="fp32", **{**TINY, "batch_size": 64}))
    assert double.activation_bytes == pytest.approx(2 * est.activation_bytes, rel=0.05)
    half = estimate_memory(TrainConfig(model="dcgan", precision="bf16", **{**TINY, "batch_size": 32}))
    assert half.activation_bytes < 0.75 * est.activation_bytes


def test_max_batch_size_is_the_largest_that_fits() -> None:
    cfg = TrainConfig(model="dcgan", **TINY)
    memory = estimate_memory(TrainConfig(model="dcgan", **{**TINY, "batch_size": 300})).device_total
    best = max_batch_size(cfg, memory)
    assert 290 <= best <= 300
    assert estimate_memory(TrainConfig(model="dcgan", **{**TINY, "batch_size": best})).fits(memory)
    assert not estimate_memory(TrainConfig(model="dcgan", **{**TINY, "batch_size": 310})).fits(memory)
    assert max_batch_size(cfg, 2**20) == 0  # below the CUDA context alone


def test_parse_and_format_bytes() -> None:
    assert parse_bytes("8GB") == parse_bytes("8 GiB") == 8 * 2**30
    assert parse_bytes("512MB") == 512 * 2**20 and parse_bytes("1.5g") == 3 * 2**29
    for bad in ("", "eight", "8XB", "0GB"):
        with pytest.raises(UserError):
            parse_bytes(bad)
    assert format_bytes(0) == "0 B" and format_bytes(3 * 2**29) == "1.5 GiB"


def test_estimate_command(capsys: pytest.CaptureFixture) -> None:
    assert main(["estimate", "--model", "dcgan", "--resolution", "32", "--width", "8",
                 "--batch-size", "16", "--precision", "bf16", "--max-batch", "--memory", "1GB"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dcgan at 32 px, batch 16, bf16, on a CUDA GPU:")
    for part in ("parameters", "optimiser state", "activations", "dataset on the device",
                 "peak allocated", "predicted device memory", "fits in 1 GiB"):
        assert part in out, part
    assert "largest batch that fits in 1 GiB: --batch-size " in out
    assert main(["estimate", "--max-batch"]) == 2
    assert "needs --memory" in capsys.readouterr().err
    assert main(["estimate", "--resolution", "30"]) == 2


def test_memory_check_quick(tmp_path: Path) -> None:
    path = Path(__file__).parents[2] / "benchmarks" / "memory_check.py"
    spec = importlib.util.spec_from_file_location("memory_check", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--quick", "--models", "dcgan", "--batch-sizes", "4", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "memory_check_cpu.json").read_text())
    assert saved["count"] == 1 and saved["results"][0]["measured"] > 0
    assert abs(result["results"][0]["error"]) < 0.01  # the simulation is the same step
    assert "| dcgan | 32 | 4 |" in (tmp_path / "memory_check_cpu.md").read_text()
