"""Two `latentstudio serve` processes on one runs folder, starring at the same time: every
acknowledged star is listed in curated.json and every file in curated/ belongs to a listed star."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

RUN = "tiny"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory, tiny_run: Callable[..., Path]) -> Path:
    """A runs folder with a private copy of a tiny DCGAN run (32 px, width 8, 4 steps)."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(tiny_run("dcgan"), root / RUN, ignore=shutil.ignore_patterns("tb"))
    return root


def _request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def two_servers(runs_root: Path) -> Iterator[list[int]]:
    """Ports of two `latentstudio serve` processes over runs_root, both answering."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "latentstudio", "serve", str(runs_root),
                               "--port", "0", "--no-browser"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, text=True) for _ in range(2)]
    try:
        ports = []
        for proc in procs:
            line = proc.stderr.readline()
            m = re.search(r"at http://127\.0\.0\.1:(\d+)/", line)
            assert m, line
            ports.append(int(m.group(1)))
        for port in ports:  # the socket listens before uvicorn answers: wait for an answer
            deadline = time.monotonic() + 60
            while True:
                try:
                    assert _request(port, "GET", "/api/runs")[0] == 200
                    break
                except ConnectionError:
                    assert time.monotonic() < deadline, "gallery server did not answer"
                    time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _concurrently(ports: list[int], requests: list[tuple[str, str, dict | None]]) -> list[int]:
    """Send (method, path, body) requests from 16 threads, alternating between the servers."""
    def send(i: int) -> int:
        return _request(ports[i % len(ports)], *requests[i])[0]

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(send, range(len(requests))))


def _star(seed: int) -> tuple[str, str, dict]:
    return "POST", f"/api/runs/{RUN}/curated", {"seed": seed}


def _check_curated(run: Path, seeds: set[int]) -> list[dict]:
    """Exactly `seeds` are listed, and curated/ holds exactly their files; returns the items."""
    items = json.loads((run / "curated.json").read_text())["items"]
    assert sorted(i["seed"] for i in items) == sorted(seeds), f"{len(items)} of {len(seeds)} stars listed"
    listed = {i["file"] for i in items} | {i["latent_file"] for i in items}
    on_disk = {f"curated/{p.name}" for p in (run / "curated").iterdir() if p.name != ".lock"}
    assert on_disk == listed  # no orphans (nor temp files) and no listed file missing
    return items


def test_stars_and_unstars_from_two_servers_are_all_kept(runs_root: Path, two_servers: list[int]) -> None:
    run = runs_root / RUN
    assert _concurrently(two_servers, [_star(s) for s in range(100)]) == [201] * 100
    items = _check_curated(run, set(range(100)))
    # Unstar half while starring 50 more, mixed, on both servers.
    ids = {i["seed"]: i["id"] for i in items}
    mixed = [r for s in range(50) for r in (("DELETE", f"/api/runs/{RUN}/curated/{ids[s]}", None),
                                            _star(100 + s))]
    assert _concurrently(two_servers, mixed) == [204, 201] * 50
    _check_curated(run, set(range(50, 150)))
