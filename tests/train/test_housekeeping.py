"""The run folder stays tidy: no leftover temporary files, metrics.jsonl without repeated steps
and in strict JSON, files readable as the umask says."""

import json
import math
import os
from pathlib import Path

import pytest

from latentstudio import atomic
from latentstudio.runs.folder import read_metrics
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

TINY = dict(data="shapes:96", resolution=32, batch_size=16, width=8, latent_dim=16, log_every=2,
            preview_count=4, seed=3)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_removes_stale_temporary_files_and_repeated_steps(tmp_path: Path) -> None:
    run = train(TrainConfig(steps=6, out=str(tmp_path / "r"), **TINY), progress=False)
    # As a kill leaves them: a checkpoint half written, steps logged after the checkpoint.
    stale = [run / "checkpoints" / ".last.pt.k1x2.tmp", run / ".config.json.abcd.tmp",
             run / "samples" / ".epoch_0002.png.zz.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    other = run / ".curated.json.q.tmp"  # the gallery's, maybe being written right now
    other.write_bytes(b"{}")
    last = _records(run)[-1]
    with open(run / "metrics.jsonl", "a") as f:
        for step in (8, 10):
            f.write(json.dumps({**last, "step": step, "time": last["time"] + step}) + "\n")
        f.write('{"step": 12, "epo')
    train(resume=run, overrides={"steps": 12}, progress=False)
    assert not any(p.exists() for p in stale) and other.exists()
    records = [r for r in _records(run) if "event" not in r]
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)) and steps[-1] == 12
    times = [r["time"] for r in records]
    assert times == sorted(times)


def test_metrics_are_strict_json_with_null_for_non_finite_values(tmp_path: Path) -> None:
    from latentstudio.runs import metrics_line

    line = metrics_line({"step": 3, "loss_g": math.nan, "loss_d": math.inf, "d_real": 0.5})
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"step": 3, "loss_g": None, "loss_d": None, "d_real": 0.5}
    (tmp_path / "metrics.jsonl").write_text(  # a log of 0.1.0 holds bare NaN
        line + '{"step": 4, "loss_g": NaN, "loss_d": 1.0}\n')
    records, bad = read_metrics(tmp_path)
    assert bad == 0 and [r["loss_g"] for r in records] == [None, None]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_honour_the_umask(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        new = atomic.write_bytes(tmp_path / "new.bin", b"x")
        open(tmp_path / "plain.bin", "wb").close()
        assert new.stat().st_mode & 0o777 == (tmp_path / "plain.bin").stat().st_mode & 0o777
        assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    finally:
        os.umask(before)


def test_atomic_rewrite_keeps_the_files_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    path.write_text("{}")
    path.chmod(0o640)
    atomic.write_json(path, {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o640 and json.loads(path.read_text()) == {"a": 1}
