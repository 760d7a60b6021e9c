"""`eval --weights` with a file that is not safe weights: one line, exit 2, no code run, and
never a hint to load it unsafely."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from cli_checks import one_line_error


class _Payload:
    """Unpickling this would create a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


@pytest.fixture
def run(tiny_run) -> Path:
    return tiny_run("dcgan", name="tiny-dcgan")


def _code_pickle(folder: Path) -> tuple[Path, Path]:
    marker = folder / "pwned"
    path = folder / "evil.pt"
    path.write_bytes(pickle.dumps({"fc.weight": _Payload(marker)}))
    return path, marker


def _truncated(folder: Path) -> tuple[Path, Path]:
    whole = folder / "whole.pt"
    torch.save({"fc.weight": torch.zeros(1000)}, whole)
    path = folder / "cut.pt"
    path.write_bytes(whole.read_bytes()[:600])
    return path, folder / "never"


@pytest.mark.parametrize("extractor", ["lite0", "inception"])
@pytest.mark.parametrize("make", [_code_pickle, _truncated])
def test_eval_refuses_bad_weights_in_one_line(extractor: str, make, run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad, marker = make(tmp_path)
    err = one_line_error(["eval", str(run), "--extractor", extractor, "--weights", str(bad),
                          "--n", "8", "--device", "cpu", "--no-progress"], capsys)
    assert str(bad) in err and "weights_only" not in err
    assert not marker.exists()


def test_eval_negative_seed(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(["eval", str(run), "--seed", "-1"], capsys)
    assert "argument --seed: must not be negative" in err
