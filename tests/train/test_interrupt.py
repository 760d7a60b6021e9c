"""Ctrl-C during training saves a checkpoint and exits with status 130; the run resumes from it
and says from where, and how many logged steps are redone."""

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
    assert proc.returncode == 130, err  # as command-line tools do after Ctrl-C
    assert "interrupted at step" in err and "--resume" in err
    assert "Traceback" not in err and "\ninterrupted\n" not in err
    step = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"]
    assert 3 <= step < 100000
    resumed = subprocess.run([sys.executable, "-m", "latentstudio", "train", "--resume", str(run),
                              "--steps", str(step + 2)], capture_output=True, text=True, env=env,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from its last checkpoint: step {step} of" in resumed.stderr
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"] == step + 2


def test_resume_says_where_it_continues_and_what_is_redone(tiny_run, tmp_path: Path, capsys) -> None:
    """A checkpoint every 2 epochs, a log every step: a run stopped between them redoes steps."""
    import json
    import shutil

    from latentstudio.cli import main

    run = tmp_path / "run"
    shutil.copytree(tiny_run("dcgan", data="shapes:32", batch_size=8, steps=6, log_every=1,
                             checkpoint_every=100), run)
    step = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"]
    with open(run / "metrics.jsonl", "a") as f:  # as if killed after logging steps 7 and 8
        for s in (7, 8):
            f.write(json.dumps({"step": s, "epoch": 1, "loss_d": 1.0}) + "\n")
    assert main(["train", "--resume", str(run), "--steps", "9"]) == 0
    err = capsys.readouterr().err
    assert f"from its last checkpoint: step {step} of 9, epoch 1 (batch 2 of 4)" in err
    assert f"the {8 - step} step(s) after it (to step 8) are redone" in err
