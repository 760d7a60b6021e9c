"""The eval, nearest and runs commands end to end on a tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from latentstudio.cli import main
from latentstudio.data.shapes import make_shapes
from latentstudio.metrics.nearest import nearest_sheet, pixel_neighbours


@pytest.fixture
def run(tiny_run) -> Path:
    return tiny_run("dcgan", name="tiny-dcgan")


def test_eval_writes_eval_json_and_prints_labelled_table(
        run: Path, tiny_extractor: object, capsys: pytest.CaptureFixture) -> None:
    argv = ["eval", str(run), "--extractor", "tiny", "--n", "32", "--metrics", "fid,kid,pr",
            "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "FID (tiny)" in out and "memorisation (tiny)" in out and "eval.json" in out
    assert "memorisation (pixels)" in out
    data = json.loads((run / "eval.json").read_text())
    assert {"fid_tiny", "kid_tiny", "precision_tiny", "recall_tiny", "memorisation_tiny",
            "memorisation_px"} <= set(
        data["metrics"])
    assert data["evaluations"]["tiny"]["info"]["step"] == 4
    first = data["metrics"]
    assert main(argv) == 0  # same seed, same numbers
    assert json.loads((run / "eval.json").read_text())["metrics"] == first

    assert main(["runs", str(run.parent), "--markdown"]) == 0
    table = capsys.readouterr().out
    assert "tiny-dcgan" in table and "FID (tiny)" in table and "loss_d" in table


def test_nearest_writes_a_sheet(run: Path, tiny_extractor: object, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    assert main(["nearest", str(run), "--n", "5", "--k", "2", "--extractor", "tiny",
                 "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    with Image.open(out) as im:
        # 5 rows of sample | gap | 2 feature neighbours | gap | 2 pixel neighbours, 34 px tiles x2
        assert im.size == (2 * (7 * 34 + 2), 2 * (5 * 34 + 2) + 16)


def test_neighbours_of_copies_are_the_originals(tiny_extractor: object) -> None:
    train_set = make_shapes(40, 16, seed=0)
    copies = train_set.images[torch.tensor([3, 17, 29])]
    assert pixel_neighbours(copies, train_set.images, 2)[:, 0].tolist() == [3, 17, 29]
    sheet = nearest_sheet(train_set, copies, "tiny", k=2, progress=False)
    assert sheet.size == (2 * (7 * 18 + 2), 2 * (3 * 18 + 2) + 16)


@pytest.mark.parametrize("argv, message", [
    (["eval", "{run}", "--metrics", "fid,is"], "unknown metric is"),
    (["eval", "{run}", "--extractor", "vgg"], "unknown extractor 'vgg'"),
    (["eval", "{tmp}"], "not a latentstudio run folder"),
    (["nearest", "{tmp}/missing"], "does not exist"),
    (["runs", "{tmp}/missing"], "no runs folder"),
    (["runs", "{run}", "--sort", "nope"], "cannot sort by 'nope'"),
])
def test_user_errors_are_one_line(argv: list[str], message: str, run: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    argv = [a.replace("{run}", str(run)).replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv + (["--no-progress"] if argv[0] != "runs" else [])) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
