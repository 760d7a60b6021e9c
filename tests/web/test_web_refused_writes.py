"""Stars and unstars the file system refuses (disk full, read-only, no permission): a JSON 403/507
naming the run folder and the cause, and curated.json and the files already there unharmed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from latentstudio import atomic

RUN = "tiny"


def refuse_writes(monkeypatch: pytest.MonkeyPatch, code: int, suffix: str = "") -> None:
    """Make every atomic write of a file ending in `suffix` fail with OSError(code)."""
    write = atomic.write_bytes

    def failing(path, data):
        if str(path).endswith(suffix):
            raise OSError(code, os.strerror(code), str(path))
        return write(path, data)

    monkeypatch.setattr(atomic, "write_bytes", failing)


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in [run / "curated.json", *(run / "curated").iterdir()]}


@pytest.fixture
def starred(client, runs_root: Path) -> dict:
    """One star already made before the disk fills up."""
    r = client.post(f"/api/runs/{RUN}/curated", json={"seed": 1})
    assert r.status_code == 201
    return r.json()


CAUSES = [(errno.ENOSPC, 507, "no space left"), (errno.EROFS, 403, "read-only file system"),
          (errno.EACCES, 403, "permission denied")]


@pytest.mark.parametrize("code,status,cause", CAUSES)
@pytest.mark.parametrize("failing_file", [".png", ".pt", "curated.json"])
def test_refused_star_answers_json_and_keeps_what_was_there(client, runs_root, starred, monkeypatch,
                                                            code, status, cause, failing_file):
    run = runs_root / RUN
    before = snapshot(run)
    refuse_writes(monkeypatch, code, failing_file)
    r = client.post(f"/api/runs/{RUN}/curated", json={"seed": 2})
    assert r.status_code == status
    detail = r.json()["detail"]
    assert str(run) in detail and cause in detail and "\n" not in detail
    assert snapshot(run) == before  # earlier star intact, no half-written star left behind
    monkeypatch.undo()
    assert client.post(f"/api/runs/{RUN}/curated", json={"seed": 2}).status_code == 201


def test_refused_unstar_keeps_the_favourite(client, runs_root, starred, monkeypatch):
    run = runs_root / RUN
    before = snapshot(run)
    refuse_writes(monkeypatch, errno.EROFS)
    r = client.delete(f"/api/runs/{RUN}/curated/{starred['id']}")
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert snapshot(run) == before
    assert [i["id"] for i in client.get(f"/api/runs/{RUN}/curated").json()["items"]] == [starred["id"]]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions to apply")
def test_run_folder_without_write_permission(client, runs_root):
    run = runs_root / RUN
    run.chmod(0o555)
    try:
        r = client.post(f"/api/runs/{RUN}/curated", json={"seed": 3})
    finally:
        run.chmod(0o755)
    assert r.status_code == 403 and "permission denied" in r.json()["detail"]
    assert not (run / "curated").exists() and not (run / "curated.json").exists()
