"""Fixtures for the data tests: a private cache, a local HTTP mirror, tiny MNIST/CIFAR files."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from datafiles import sha256, write_cifar_archive, write_idx_gz

from latentstudio.data import cifar, mnist


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every data test gets its own empty cache and no mirror overrides from the environment."""
    root = tmp_path / "cache"
    monkeypatch.setenv("LATENTSTUDIO_CACHE", str(root))
    for name in ("MNIST", "FASHION_MNIST", "CIFAR10"):
        monkeypatch.delenv(f"LATENTSTUDIO_MIRROR_{name}", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return root


@dataclass
class Server:
    """A static HTTP server on 127.0.0.1 serving `root`; `requests` lists the paths asked for."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, log: list[str], **kwargs) -> None:
        self._log = log
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._log.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    log: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root), log=log))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            server.shutdown()
            server.server_close()
            stopped = True

    yield Server(root, f"http://127.0.0.1:{server.server_address[1]}/", log, stop)
    stop()


@pytest.fixture
def dead_url() -> str:
    """A local URL where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def serve_mnist(http_server: Server, monkeypatch: pytest.MonkeyPatch):
    """serve_mnist(name) puts tiny train (20) and test (10) splits of `name` on the local mirror,
    points the loader's mirrors and hashes at them, hides any system copy, and returns
    {split: (images, labels)}."""

    def serve(name: str = "mnist") -> dict[str, tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(0)
        folder = http_server.root / name
        folder.mkdir()
        data, hashes = {}, {}
        for split, n in (("train", 20), ("test", 10)):
            images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            labels = (np.arange(n) % 10).astype(np.uint8)
            rng.shuffle(labels)
            image_file, label_file = mnist.split_files(split)
            write_idx_gz(folder / image_file, images)
            write_idx_gz(folder / label_file, labels)
            hashes[image_file] = sha256(folder / image_file)
            hashes[label_file] = sha256(folder / label_file)
            data[split] = (images, labels.astype(np.int64))
        monkeypatch.setitem(mnist.MIRRORS, name, [http_server.url + name + "/"])
        monkeypatch.setitem(mnist.SHA256, name, hashes)
        monkeypatch.setitem(mnist.SYSTEM_DIRS, name, [])
        return data

    return serve


@pytest.fixture
def serve_cifar(http_server: Server, monkeypatch: pytest.MonkeyPatch):
    """Puts a tiny CIFAR-10 archive (20 train, 6 test) on the local mirror and points the loader's
    mirror and hash at it; returns {split: (images, labels)}."""
    archive = http_server.root / cifar.ARCHIVE
    data = write_cifar_archive(archive)
    monkeypatch.setattr(cifar, "MIRRORS", [http_server.url])
    monkeypatch.setitem(cifar.SHA256, cifar.ARCHIVE, sha256(archive))
    return data
