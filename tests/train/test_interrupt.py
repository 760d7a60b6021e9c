"""Ctrl-C during training saves a checkpoint, exits cleanly, and the run resumes from it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch


def test_ctrl_c_saves_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "latentstudio", "train", "--data", "shapes:64", "--width", "8",
           "--batch-size", "8", "--latent-dim", "8", "--preview-count", "4", "--log-every", "1",
           "--steps", "100000", "--out", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "interrupted at step" in err and "--resume" in err
    step = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"]
    assert 3 <= step < 100000
    resumed = subprocess.run([sys.executable, "-m", "latentstudio", "train", "--resume", str(run),
                              "--steps", str(step + 2)], capture_output=True, text=True, env=env,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"] == step + 2
