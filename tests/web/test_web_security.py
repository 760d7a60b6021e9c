"""Only files inside the runs folder are served: traversal in every spelling, absolute paths,
symlinks out, hidden and non-picture files all get 404, through the test client and through a
real socket (the test client normalises `..` before sending, a raw request does not)."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest

RUN = "tiny"
SECRET = b"\x89PNG secret outside the runs folder"


@pytest.fixture
def outside(runs_root: Path) -> Path:
    """A secret picture beside the runs folder, and links that point at it from inside."""
    secret_dir = runs_root.parent / "outside"
    secret_dir.mkdir()
    (secret_dir / "secret.png").write_bytes(SECRET)
    (runs_root / "linked-run").symlink_to(secret_dir, target_is_directory=True)
    (runs_root / RUN / "samples" / "escape.png").symlink_to(secret_dir / "secret.png")
    (runs_root / RUN / "samples" / ".hidden.png").write_bytes(b"hidden")
    return secret_dir


ATTEMPTS = [
    "/files/%2e%2e/outside/secret.png",
    "/files/..%2Foutside%2Fsecret.png",
    "/files/%2E%2E%2Foutside%2Fsecret.png",
    f"/files/{RUN}/%2e%2e/%2e%2e/outside/secret.png",
    f"/files/{RUN}/..%2F..%2Foutside/secret.png",
    "/files/%252e%252e/outside/secret.png",
    "/files/%2Fetc%2Fpasswd",
    "/files//etc/passwd",
    "/files/%2F%2Fetc/passwd",
    f"/files/{RUN}%5C..%5C..%5Coutside%5Csecret.png",
    f"/files/{RUN}/samples/escape.png",
    "/files/linked-run/secret.png",
    f"/files/{RUN}/samples/.hidden.png",
    f"/files/{RUN}/checkpoints/last.pt",
    f"/files/{RUN}/samples/epoch_0000.png%00.txt",
    f"/files/{RUN}/%2e/samples/epoch_0000.png",
    "/files/",
    "/api/runs/%2e%2e",
    "/api/runs/..%2F..",
    "/api/runs/linked-run",
    "/api/runs/%2e%2e/curated",
]
RAW_ATTEMPTS = [
    "/files/../outside/secret.png",
    f"/files/{RUN}/../../outside/secret.png",
    "/files/./../outside/secret.png",
    f"/files/{RUN}/./samples/epoch_0000.png",
    "/static/../app.py",
    "/static/%2e%2e/app.py",
    "/static/..%2Fapp.py",
    "/api/runs/../../outside",
]


@pytest.mark.parametrize("url", ATTEMPTS)
def test_traversal_and_links_out_are_404(client, outside, url):
    r = client.get(url)
    assert r.status_code == 404, (url, r.status_code)
    assert SECRET not in r.content


def test_linked_run_folder_is_not_listed_or_writable(client, outside):
    assert [r["name"] for r in client.get("/api/runs").json()["runs"]] == [RUN]
    assert client.post("/api/runs/linked-run/curated", json={"seed": 1}).status_code == 404
    assert client.post("/api/runs/%2e%2e/curated", json={"seed": 1}).status_code == 404
    assert client.delete(f"/api/runs/{RUN}/curated/..%2F..%2Fconfig").status_code == 404
    assert sorted(p.name for p in outside.iterdir()) == ["secret.png"]


def test_a_normal_file_is_still_served(client, outside):
    assert client.get(f"/files/{RUN}/samples/epoch_0000.png").status_code == 200
    assert client.get(f"/files/{RUN}/metrics.jsonl").status_code == 200


def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET exactly `path` (no normalisation) from the live server."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_raw_traversal_over_a_real_socket_is_404(live_server, outside):
    for path in RAW_ATTEMPTS + ATTEMPTS:
        status, body = raw_get(live_server, path)
        assert status == 404, (path, status)
        assert SECRET not in body and b"create_app" not in body
    assert raw_get(live_server, f"/files/{RUN}/samples/epoch_0000.png")[0] == 200
