"""A full disk or a read-only folder while training or resuming: one line naming the folder and
the cause, exit 2, and the last good checkpoint as it was (injected ENOSPC / EROFS)."""

import errno
import os
import tempfile
from pathlib import Path

import pytest
import torch

from latentstudio import atomic
from latentstudio.cli import main

TINY_FLAGS = ["--data", "shapes:96", "--width", "8", "--batch-size", "16", "--latent-dim", "16",
              "--preview-count", "4", "--log-every", "2", "--seed", "3", "--checkpoint-every", "1"]


def _errors(stderr: str) -> list[str]:
    """The error lines of stderr (the progress bar shares it), after checking for a traceback."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _progress(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]


def _fail_checkpoint_writes(monkeypatch, after: int) -> None:
    """The disk fills up: writing a checkpoint fails with ENOSPC once `after` of them were written
    (the data reaches the temporary file, fsync reports the error, as on a full disk)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file is being written")
    real_fsync, written = os.fsync, []

    def fsync(fd: int) -> None:
        if ".last.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            if len(written) >= after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)


def test_a_full_disk_while_training_is_one_line_and_keeps_the_last_checkpoint(
        tmp_path: Path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    _fail_checkpoint_writes(monkeypatch, after=2)  # the start and epoch 1 are saved, epoch 2 not
    assert main(["train", *TINY_FLAGS, "--epochs", "3", "--out", str(run)]) == 2
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "no space left on device" in err[0], err
    assert str(run / "checkpoints") in err[0] and f"`latentstudio train --resume {run}`" in err[0]
    assert _progress(run)["step"] == 6  # epoch 1's checkpoint, intact and readable
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0  # space freed: it goes on
    assert _progress(run)["step"] == 18


def test_a_read_only_folder_at_resume_is_one_line_and_changes_nothing(
        tmp_path: Path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--epochs", "1", "--out", str(run)]) == 0
    before = {p: p.read_bytes() for p in (run / "config.json", run / "checkpoints" / "last.pt")}
    capsys.readouterr()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "read-only file system" in err[0] and str(run) in err[0], err
    assert {p: p.read_bytes() for p in before} == before


def test_a_refused_atomic_write_keeps_the_old_file_and_names_it(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(b"good")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError) as caught:
        atomic.write_bytes(path, b"new but never complete")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert path.read_bytes() == b"good" and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
