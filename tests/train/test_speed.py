"""Speed paths: no host syncs in the step, --compile with its fallback, out-of-memory handling,
and the speed benchmark in its CPU-size mode."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from latentstudio.errors import UserError
from latentstudio.models import get_family
from latentstudio.precision import resolve_precision
from latentstudio.runs.checkpoint import load_checkpoint
from latentstudio.train import loop
from latentstudio.train.config import TrainConfig, model_config_for, resolve_config
from latentstudio.train.loop import Trainer, train
from latentstudio.train.memory import estimate_memory
from latentstudio.train.steps import step_class

TINY = dict(data="shapes:48", resolution=32, batch_size=8, width=8, latent_dim=8, log_every=2,
            preview_count=4, seed=5, device="cpu")
BENCHMARKS = Path(__file__).parents[2] / "benchmarks"

# Ops that make the host wait for the device: .item(), bool(t), float(t), and outputs whose
# shape depends on values.
SYNC_OPS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default,
            torch.ops.aten.nonzero.default, torch.ops.aten.masked_select.default}


class CountSyncs(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in SYNC_OPS:
            self.calls.append(str(func))
        return func(*args, **(kwargs or {}))


def test_sync_counter_sees_item() -> None:
    with CountSyncs() as c:
        x = torch.ones(3).sum()
        x.item()
        bool(x > 1)
    assert len(c.calls) == 2


@pytest.mark.parametrize("model,extra", [
    ("dcgan", {"ema": 0.9, "label_noise": 0.1, "label_smoothing": 0.1, "instance_noise": 0.1,
               "augment": "diffaug"}),
    ("wgan", {"n_critic": 2}), ("wgan-gp", {"n_critic": 2}), ("cgan", {}),
    ("vae-conv", {"kl_warmup": 3}),
])
def test_training_step_never_reads_device_values(model: str, extra: dict) -> None:
    family = get_family(model)
    cfg = resolve_config(TrainConfig(model=model, **{**TINY, **extra}), family)
    models = nn.ModuleDict(family.build(model_config_for(cfg, family, 3, 4)))
    step = step_class(family.hooks)(models, cfg, torch.device("cpu"), 100)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randint(0, 4, (4,))
    with CountSyncs() as c:
        for i in range(cfg.n_critic + 1):  # discriminator-only and generator-update steps
            step(real, labels, i)
    assert c.calls == []


def test_loop_reads_losses_only_when_logging(tmp_path: Path) -> None:
    trainer = Trainer(TrainConfig(steps=3, **{**TINY, "log_every": 100}), tmp_path, progress=False)
    trainer.callbacks = []
    with CountSyncs() as c:
        trainer._run(loop.tqdm(disable=True))
    assert trainer.step == 3 and c.calls == []  # the final flush reads all losses in one tolist()


class _Failing(nn.Module):
    """Stands in for torch.compile's wrapper; its `fail_on`-th call raises like a compiler error."""

    def __init__(self, net: nn.Module, fail_on: int) -> None:
        super().__init__()
        self._orig_mod = net
        self.calls, self.fail_on = 0, fail_on

    def forward(self, *args):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("simulated compiler failure\nwith details")
        return self._orig_mod(*args)


def test_compile_failure_falls_back_to_the_same_training(tmp_path: Path, monkeypatch, capsys) -> None:
    eager = train(TrainConfig(steps=3, out=str(tmp_path / "eager"), **TINY), progress=False)
    a = load_checkpoint(eager / "checkpoints" / "last.pt")
    # Failing on the discriminator's 3rd call is inside the generator update, after the
    # discriminator was updated: the state must be restored before the eager retry.
    for fail_on in (1, 3):
        monkeypatch.setattr(torch, "compile", lambda net, fail_on=fail_on, **kw: _Failing(net, fail_on))
        out = train(TrainConfig(steps=3, compile=True, out=str(tmp_path / f"c{fail_on}"), **TINY),
                    progress=False)
        assert "--compile failed (RuntimeError: simulated compiler failure)" in capsys.readouterr().err
        b = load_checkpoint(out / "checkpoints" / "last.pt")
        for m in a["models"]:
            for k, v in a["models"][m].items():
                assert torch.equal(v, b["models"][m][k]), (fail_on, m, k)
        assert b["config"]["compile"] is True


@pytest.mark.slow
def test_compile_really_compiles(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(loop, "COMPILE_OPTIONS", {"dynamic": False, "backend": "eager"})
    eager = train(TrainConfig(steps=3, out=str(tmp_path / "e"), **TINY), progress=False)
    compiled = train(TrainConfig(steps=3, compile=True, out=str(tmp_path / "c"), **TINY),
                     progress=False)
    assert "--compile failed" not in capsys.readouterr().err
    a = load_checkpoint(eager / "checkpoints" / "last.pt")["models"]
    b = load_checkpoint(compiled / "checkpoints" / "last.pt")["models"]
    for m in a:
        for k in a[m]:
            torch.testing.assert_close(a[m][k], b[m][k])


@pytest.mark.parametrize("gpu_memory,advice", [
    (2**30, "another program may be using this GPU; try --batch-size 8"),  # the estimate says 16 fits
    (None, "try --batch-size 8, the largest that fits"),  # room for 8 to 15 images
])
def test_out_of_memory_stops_with_a_batch_size_and_a_valid_checkpoint(
        tmp_path: Path, monkeypatch, gpu_memory: int | None, advice: str) -> None:
    cfg = TrainConfig(steps=10, out=str(tmp_path / "r"), checkpoint_every="1epochs",
                      **{**TINY, "batch_size": 16})
    if gpu_memory is None:
        data_bytes = 48 * 3 * 32 * 32 + 48 * 8  # the uint8 images and int64 labels on the device
        at_8 = estimate_memory(TrainConfig(**{**TINY, "batch_size": 8}), num_classes=4,
                               data_count=0, device_type="cuda").device_total
        gpu_memory = at_8 + data_bytes + 1024
    real_step = Trainer._train_step

    def failing(self, real, labels):
        if self.step == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, real, labels)

    monkeypatch.setattr(Trainer, "_train_step", failing)
    monkeypatch.setattr(loop, "device_memory", lambda device: ("Test GPU", gpu_memory))
    with pytest.raises(UserError) as e:
        train(cfg, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "out of GPU memory at step 3 with --batch-size 16 on Test GPU" in msg
    assert advice in msg and "is intact" in msg
    saved = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")  # still readable
    assert saved["progress"]["step"] == 3  # written at the end of epoch 1, before the failure


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_speed_benchmark_quick(tmp_path: Path) -> None:
    bench = _load_benchmark("train_speed")
    result = bench.main(["--quick", "--device", "cpu", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "train_speed_cpu.json").read_text())
    assert saved["results"] == json.loads(json.dumps(result["results"]))
    (row,) = saved["results"]
    assert row["batch"] == 8 and row["baseline_images_per_s"] > 0 and row["latentstudio_images_per_s"] > 0
    assert row["ratio"] == pytest.approx(row["latentstudio_images_per_s"] / row["baseline_images_per_s"])
    # Same layers; fewer FLOPs for latentstudio (no discriminator weight gradients in the G update).
    f = saved["flops_per_image"]
    # MFU against the matmul rate measured in the same run. No "< 1" bound: the quick run's tiny
    # matmul, timed while other work loads the machine, can under-measure the peak.
    rate = saved["matmul"]["tflops"] * 1e12
    assert row["mfu_latentstudio"] > 0
    assert row["mfu_latentstudio"] == pytest.approx(row["latentstudio_images_per_s"] * f["latentstudio"] / rate)
    assert row["mfu_baseline"] == pytest.approx(row["baseline_images_per_s"] * f["baseline"] / rate)
    assert 0.8 * f["baseline"] < f["latentstudio"] < f["baseline"]
    assert "| 8 |" in (tmp_path / "train_speed_cpu.md").read_text()
    if resolve_precision("auto", "cpu") == "bf16":  # a CPU with native bf16: fp32 timed beside it
        assert row["precision"] == "bf16" and row["fp32_images_per_s"] > 0
        assert row["bf16_vs_fp32"] == pytest.approx(row["latentstudio_images_per_s"] / row["fp32_images_per_s"])
        for key in ("vae", "fastgan"):
            assert saved[key][0]["bf16_images_per_s"] > 0 and saved[key][0]["fp32_images_per_s"] > 0
        assert "bf16 / fp32" in (tmp_path / "train_speed_cpu.md").read_text()
        assert "FastGAN (fastgan" in (tmp_path / "train_speed_cpu.md").read_text()
    else:
        assert row["precision"] == "fp32" and "fp32_images_per_s" not in row
        assert saved["vae"] == saved["fastgan"] == []


def test_example_baseline_is_the_dcgan_architecture() -> None:
    bench = _load_benchmark("train_speed")
    ours = get_family("dcgan").build(model_config_for(
        resolve_config(TrainConfig(resolution=64, width=64, latent_dim=100), get_family("dcgan")),
        get_family("dcgan"), 3, 0))
    base = {"generator": bench.ExampleGenerator(64), "discriminator": bench.ExampleDiscriminator(64)}
    for name in ("generator", "discriminator"):
        shapes_ours = [tuple(p.shape) for p in ours[name].parameters()]
        shapes_base = [tuple(p.shape) for p in base[name].parameters()]
        assert shapes_ours == shapes_base, name


# ----- on a CUDA GPU (skipped elsewhere)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("model,precision,extra", [
    ("dcgan", "bf16", {"augment": "diffaug", "ema": 0.99, "label_noise": 0.1}),
    ("dcgan", "fp16", {}), ("wgan-gp", "bf16", {}), ("wgan", "fp32", {}), ("cgan", "bf16", {}),
    ("vae-conv", "bf16", {}),
])
def test_cuda_steps_never_wait_for_the_gpu(tmp_path: Path, model: str, precision: str,
                                           extra: dict) -> None:
    cfg = TrainConfig(model=model, precision=precision, steps=20,
                      **{**TINY, "device": "cuda", **extra})
    trainer = Trainer(cfg, tmp_path, progress=False)
    assert trainer.updater.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16,
                                     "fp32": None}[precision]
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in trainer.models.parameters() if p.dim() == 4)
    batches = trainer.loader.batches(0)
    real, labels = next(batches)
    trainer._accumulate(trainer._train_step(real, labels))  # cuDNN autotuning may wait
    trainer.step += 1
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for real, labels in batches:  # the other 5 batches: both update paths of n_critic 5
            trainer._accumulate(trainer._train_step(real, labels))
            trainer.step += 1
        real, labels = next(trainer.loader.batches(1))  # a new epoch's order
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(torch.isfinite(v).item() for v in trainer._acc.values())


@cuda
@pytest.mark.slow
def test_cuda_compile_without_fallback(tmp_path: Path, capsys) -> None:
    for model in ("dcgan", "wgan-gp", "vae-conv"):
        run = train(TrainConfig(model=model, steps=6, compile=True, out=str(tmp_path / model),
                                **{**TINY, "device": "cuda"}), progress=False)
        assert "--compile failed" not in capsys.readouterr().err, model
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert records[-1]["step"] == 6


@cuda
def test_cuda_out_of_memory_is_a_user_error(tmp_path: Path) -> None:
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, 2**30 / total))  # this process: 1 GiB
    try:
        with pytest.raises(UserError) as e:
            train(TrainConfig(model="dcgan", data="shapes:512", resolution=128, batch_size=512,
                              steps=3, out=str(tmp_path / "r"), device="cuda"), progress=False)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert "out of GPU memory at step 0 with --batch-size 512" in str(e.value)
    assert "\n" not in str(e.value)
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["progress"]["step"] == 0


@cuda
def test_cuda_memory_estimate_within_20_percent(tmp_path: Path) -> None:
    bench = _load_benchmark("memory_check")
    result = bench.main(["--device", "cuda", "--models", "dcgan,vae-conv", "--resolutions", "64",
                         "--batch-sizes", "128", "--out", str(tmp_path)])
    for row in result["results"]:
        assert abs(row["error"]) <= 0.2, row
