"""`pack` with an output it cannot write or a bad number: one `error:` line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import one_line_error


def test_pack_into_a_path_through_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "FILE"
    blocker.write_text("not a folder")
    err = one_line_error(["pack", "shapes:8", "--out", str(blocker / "x.npz"), "--no-progress"],
                         capsys)
    assert err == f"error: cannot write {blocker / 'x.npz'}: {blocker} is a file, not a folder"
    assert blocker.read_text() == "not a folder"


def test_pack_write_failures_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from latentstudio.data import packed

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packed, "save_pack", full_disk)
    err = one_line_error(["pack", "shapes:8", "--out", str(tmp_path / "x.npz"), "--no-progress"],
                         capsys)
    assert err == f"error: cannot write {tmp_path / 'x.npz'}: No space left on device"


@pytest.mark.parametrize("command", ["pack", "info"])
def test_negative_seed(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "x.npz")] if command == "pack" else []
    err = one_line_error([command, "shapes:8", "--seed", "-1", *out], capsys)
    assert "argument --seed: must not be negative, got -1" in err
