"""kill -9 of a training process at any moment, even while it writes a checkpoint, then
`--resume`: the same final weights and optimiser state as a run never interrupted, and a tidy
run folder (no temporary files, no step logged twice)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

# 96 images in batches of 16: 6 steps per epoch, a checkpoint at every epoch's end.
TINY = dict(data="shapes:96", resolution=32, batch_size=16, width=8, latent_dim=16, log_every=2,
            preview_count=4, seed=3, ema=0.9, instance_noise=0.2, checkpoint_every=1)
FLAGS = [x for k, v in TINY.items() for x in (f"--{k.replace('_', '-')}", str(v))]

# Runs `latentstudio train` with checkpoint writes that stop before their rename when asked:
# the N-th write of last.pt (argv[1]) touches a marker file (argv[2]) and waits to be killed.
CHILD = """
import os, sys, time
from latentstudio import atomic
from latentstudio.cli import main
hang_at, marker, written = int(sys.argv[1]), sys.argv[2], []
real_fsync = os.fsync
def fsync(fd):
    real_fsync(fd)
    if ".last.pt." in os.readlink(f"/proc/self/fd/{fd}"):
        written.append(fd)
        if len(written) == hang_at:
            open(marker, "w").close()
            time.sleep(600)
atomic.os.fsync = fsync
sys.exit(main(sys.argv[3:]))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # as the uninterrupted run (one_thread)


def _start(run: Path, steps: int, hang_at: int = 0) -> tuple[subprocess.Popen, Path]:
    marker = run.parent / f"{run.name}.hanging"
    cmd = [sys.executable, "-c", CHILD, str(hang_at), str(marker), "train", *FLAGS,
           "--steps", str(steps), "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env())
    return proc, marker


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "the training never got there"
        time.sleep(0.05)


def _state(run: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the final checkpoint: the networks, the EMA copy and the optimisers."""
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    flat = {f"models.{m}.{k}": v for m, sd in payload["models"].items() for k, v in sd.items()}

    def walk(prefix: str, obj) -> None:
        if isinstance(obj, torch.Tensor):
            flat[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(f"{prefix}.{i}", v)

    walk("step_state", payload["step_state"])
    return flat


def _assert_same(a: Path, b: Path) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys() and any(k.startswith("step_state.opt_") for k in sa)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _assert_tidy(run: Path) -> None:
    assert not [p for p in run.rglob("*.tmp")], list(run.rglob("*.tmp"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "event" not in r]
    assert steps == sorted(set(steps))
    times = [r["time"] for r in records]
    assert times == sorted(times)


def _kill_when(proc: subprocess.Popen, path: Path, delay: float) -> None:
    """kill -9 `proc` `delay` seconds after `path` appears (unless it ended before)."""
    _wait_for(proc, lambda: path.exists() or proc.poll() is not None)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.fixture
def uninterrupted(tmp_path: Path, one_thread) -> Path:
    return train(TrainConfig(steps=18, out=str(tmp_path / "whole"), **TINY), progress=False)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_kill_during_a_checkpoint_write_then_resume(tmp_path: Path, uninterrupted: Path) -> None:
    run = tmp_path / "killed"
    proc, marker = _start(run, steps=18, hang_at=3)  # saves: step 0, epoch 1, epoch 2 (hangs)
    _wait_for(proc, marker.exists)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert list((run / "checkpoints").glob(".last.pt.*.tmp"))  # the write it died in
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"] == 6
    train(resume=run, progress=False)
    _assert_same(uninterrupted, run)
    _assert_tidy(run)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_kill_at_random_moments_then_resume(tmp_path: Path, uninterrupted: Path) -> None:
    rng = random.Random(14)
    run = tmp_path / "killed"
    for _ in range(5):
        last = run / "checkpoints" / "last.pt"
        done = torch.load(last, weights_only=True)["progress"]["step"] if last.exists() else -1
        if done >= 18:
            break
        hang_at = rng.choice([0, 2, 3])  # 0: no hang, killed at a random time instead
        if done < 0:
            proc, marker = _start(run, steps=18, hang_at=hang_at)
        else:
            marker = run.parent / f"{run.name}.hanging"
            cmd = [sys.executable, "-c", CHILD, str(hang_at), str(marker), "train", "--resume",
                   str(run)]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, env=_env())
        _kill_when(proc, marker if hang_at else run / "metrics.jsonl",
                   delay=0 if hang_at else rng.uniform(0, 3))
        marker.unlink(missing_ok=True)
    train(resume=run, progress=False)
    _assert_same(uninterrupted, run)
    _assert_tidy(run)
