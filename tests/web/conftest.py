"""Fixtures for the gallery tests: one tiny trained run per session, copied fresh into each test's
runs folder, and a live uvicorn server on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

RUN = "tiny"


def pytest_configure(config: pytest.Config) -> None:
    # Starlette's test client asks for the httpx2 fork; httpx is what the test extra installs.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Like `latentstudio serve`: one intra-op thread, so a busy shared CPU does not stall us."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def trained_run(tiny_run: Callable[..., Path]) -> Path:
    """A real DCGAN run: 32 px, width 8, 12 steps on 128 shapes (3 epochs, so 4 preview grids)."""
    return tiny_run("dcgan", name=RUN, data="shapes:128", steps=12, batch_size=32, latent_dim=32,
                    preview_count=16, preview_every=1)


@pytest.fixture(scope="session")
def vae_run(tiny_run: Callable[..., Path]) -> Path:
    """A convolutional VAE run: 32 px, 16 previews, so its grid has real / recon / sample rows."""
    return tiny_run("vae-conv", name="vae", batch_size=32, latent_dim=8, preview_count=16)


@pytest.fixture
def runs_root(tmp_path: Path, trained_run: Path) -> Path:
    """A runs folder holding a private copy of the trained run (tests may star into it)."""
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(trained_run, root / RUN, ignore=shutil.ignore_patterns("tb"))
    return root


@pytest.fixture
def client(runs_root: Path):
    from fastapi.testclient import TestClient

    from latentstudio.web.app import create_app

    with TestClient(create_app(runs_root)) as c:
        yield c


def start_server(app, host: str = "127.0.0.1") -> tuple[str, callable]:
    """Run `app` with uvicorn in a thread on a free port; returns (base URL, stop)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return f"http://{host}:{sock.getsockname()[1]}", stop


@pytest.fixture
def live_server(runs_root: Path) -> Iterator[str]:
    """The gallery for runs_root served on 127.0.0.1 by a real uvicorn; yields its base URL."""
    from latentstudio.web.app import create_app

    url, stop = start_server(create_app(runs_root, allowed_hosts=["127.0.0.1", "localhost"]))
    try:
        yield url
    finally:
        stop()


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-proxy-server"]


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def browser():
    """Debian's Chromium, headless, through Playwright; skips only when no Chromium is installed."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium: /usr/bin/chromium is missing and none is on PATH "
                    "(install it with `apt-get install chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright python package is missing: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where browser tests save screenshots: $LATENTSTUDIO_SCREENSHOTS or a temp folder."""
    folder = Path(os.environ.get("LATENTSTUDIO_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
