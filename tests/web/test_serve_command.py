"""`latentstudio serve`: help, user errors, and a real server process on a free loopback port."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latentstudio.cli import main
from latentstudio.commands.serve import bind
from latentstudio.errors import UserError


def test_missing_runs_folder_is_one_line_error(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing"), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: runs folder") and "\n" not in err


def test_port_in_use_and_bad_port_are_user_errors():
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(UserError, match="cannot listen on 127.0.0.1"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    with pytest.raises(UserError, match="between 0 and 65535"):
        bind("127.0.0.1", 70000)


def test_serves_a_runs_folder_on_loopback_only(runs_root: Path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "latentstudio", "serve", str(runs_root), "--port", "0",
                             "--no-browser"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env,
                            text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"at http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        port = int(m.group(1))

        def get(path: str, host: str | None = None) -> int:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", path, headers={"Host": host} if host else {})
                    return conn.getresponse().status
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

        assert get("/api/runs") == 200
        assert get("/") == 200
        assert get("/api/runs", host="attacker.example") == 400  # DNS rebinding refused
    finally:
        proc.terminate()
        proc.wait(10)
