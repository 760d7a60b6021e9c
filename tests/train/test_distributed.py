"""Several processes (torchrun, gloo on CPU): one model, sharded data, one run folder, resume."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentstudio.cli import build_parser
from latentstudio.commands.train import config_from_args
from latentstudio.data import load_dataset
from latentstudio.data.loader import DeviceLoader
from latentstudio.errors import UserError
from latentstudio.runs.checkpoint import load_checkpoint
from latentstudio.train import distributed
from latentstudio.train.loop import train

WORKER = '''
import sys
import torch
from latentstudio.train.callbacks import Callback
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

out, model = sys.argv[1], sys.argv[2]


class KeepWeights(Callback):
    all_ranks = True

    def on_train_end(self, trainer):
        torch.save({"params": {k: p.detach().cpu() for k, p in trainer.models.named_parameters()},
                    "images": trainer.loader.images.cpu(), "noise": trainer.updater.randn(4).cpu(),
                    "world": trainer.world.size, "step": trainer.step},
                   f"{out}/rank{trainer.world.rank}.pt")


if len(sys.argv) > 3:  # continue that run folder
    train(resume=sys.argv[3], overrides={"steps": 8}, callbacks=[KeepWeights()], progress=False)
else:
    train(TrainConfig(model=model, **TINY), callbacks=[KeepWeights()], progress=False)
'''
TINY = dict(data="shapes:40", resolution=32, width=8, latent_dim=8, batch_size=8, steps=5,
            log_every=2, preview_count=4, seed=4, device="cpu")


def _torchrun(tmp_path: Path, model: str, *args: str, tiny: dict = TINY) -> subprocess.CompletedProcess:
    script = tmp_path / "worker.py"
    script.write_text(f"TINY = {tiny!r}\n" + WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(tmp_path), model, *args]
    # No --out: each rank would stamp its own default name; rank 0's must be the only one.
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


def _check_two_ranks(tmp_path: Path, model: str, tiny: dict = TINY) -> Path:
    proc = _torchrun(tmp_path, model, tiny=tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == 5
    # Identical weights on both ranks after DDP updates (and not the initial ones).
    assert r0["params"].keys() == r1["params"].keys()
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    # Each rank held its own half of the data, and drew its own noise.
    data = load_dataset("shapes:40", 32, seed=4, progress=False).images
    assert torch.equal(r0["images"], data[0::2]) and torch.equal(r1["images"], data[1::2])
    assert not torch.equal(r0["noise"], r1["noise"])
    # Exactly one run folder, written once, holding rank 0's weights.
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert saved["progress"]["step"] == 5
    flat = {f"{m}.{k}": v for m, sd in saved["models"].items() for k, v in sd.items()}
    for k, v in r0["params"].items():
        assert torch.equal(flat[k], v), k
    steps = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"step"' in line]
    assert len(steps) == len(set(steps)) == 3  # steps 2, 4, 5: logged by rank 0 only
    return run


def test_two_processes_train_one_model_and_resume_with_one(tmp_path: Path) -> None:
    run = _check_two_ranks(tmp_path, "dcgan")
    # A checkpoint written by 2 processes resumes in 1 (a different world size).
    train(resume=run, overrides={"steps": 8}, progress=False)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["step"] == 8


@pytest.mark.slow
def test_one_process_run_resumes_with_two(tmp_path: Path) -> None:
    from latentstudio.train.config import TrainConfig

    run = train(TrainConfig(model="dcgan", out=str(tmp_path / "run"), **TINY), progress=False)
    proc = _torchrun(tmp_path, "dcgan", str(run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 8 and r0["world"] == 2
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    assert not torch.equal(r0["noise"], r1["noise"])
    assert load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["step"] == 8


@pytest.mark.slow
@pytest.mark.parametrize("model", ["wgan-gp", "vae-conv"])
def test_two_processes_other_steps(tmp_path: Path, model: str) -> None:
    # Gradient penalty (double backward through DDP), n_critic, and the VAE's decoder.logits.
    _check_two_ranks(tmp_path, model)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_two_gpus_with_nccl(tmp_path: Path) -> None:
    _check_two_ranks(tmp_path, "dcgan", {**TINY, "device": "cuda"})


def test_device_loader_shards_by_rank() -> None:
    data = load_dataset("shapes:21", 32, progress=False)
    loaders = [DeviceLoader(data, 6, 0, torch.device("cpu"), rank=r, world_size=3) for r in range(3)]
    assert [len(x.images) for x in loaders] == [7, 7, 7]  # equal shares
    assert all(x.batch_size == 2 and len(x) == 3 for x in loaders)  # 6 in total per step
    assert torch.equal(loaders[1].images, data.images[1::3][:7])
    seen = torch.cat([x.images for x in loaders])
    assert len({bytes(im.numpy()) for im in seen}) == 21
    with pytest.raises(UserError, match="divisible"):
        DeviceLoader(data, 5, 0, torch.device("cpu"), rank=0, world_size=2)
    single = DeviceLoader(data, 6, 0, torch.device("cpu"))
    assert len(single) == 3 and single.batch_size == 6


def test_world_from_env() -> None:
    assert distributed.world_from_env({}) == distributed.SINGLE
    w = distributed.world_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1",
                                    "LOCAL_WORLD_SIZE": "2"})
    assert (w.rank, w.local_rank, w.size, w.local_size, w.is_main) == (3, 1, 4, 2, False)
    with pytest.raises(UserError):
        distributed.world_from_env({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(UserError):
        distributed.world_from_env({"WORLD_SIZE": "two"})


def test_gpus_flag_launches_torchrun_with_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0))
    argv = ["train", "--model", "wgan", "--betas", "0.5,0.9", "--no-compile", "--spectral-norm",
            "--steps", "3", "--device", "cpu", "--resume", "runs/x", "--gpus", "3"]
    parser = build_parser()
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    (cmd,) = calls
    assert cmd[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc_per_node=3"]
    assert cmd[5:8] == ["-m", "latentstudio", "train"] and "--gpus" not in cmd
    child_args = parser.parse_args(cmd[7:])
    child, _ = config_from_args(child_args)
    parent, _ = config_from_args(args)
    assert child == parent and child.betas == (0.5, 0.9) and child.spectral_norm
    # Every other train flag passes through too (whatever flags the command has).
    same = {k: v for k, v in vars(child_args).items() if k not in ("gpus", "train_parser")}
    assert same == {k: v for k, v in vars(args).items() if k not in ("gpus", "train_parser")}


def test_gpus_without_gpus_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA GPUs")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args = build_parser().parse_args(["train", "--gpus", "2", "--steps", "1"])
    with pytest.raises(UserError, match="CUDA"):
        args.func(args)


def test_cpu_threads_respect_the_machine() -> None:
    n = distributed.available_cpus()
    assert 1 <= n <= (os.cpu_count() or 1)
    before = torch.get_num_threads()
    try:
        used = distributed.set_cpu_threads(distributed.World(0, 0, 2, 2))
        assert 1 <= used <= before
        if "OMP_NUM_THREADS" not in os.environ:
            assert used <= max(1, n // 2)
    finally:
        torch.set_num_threads(before)
