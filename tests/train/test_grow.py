"""`train --grow-from SIDE`: a smaller run first, beside the asked one, then grown into it; a
resume continues whichever stage stopped; settings that cannot grow fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_checks import one_line_error

from latentstudio.cli import main
from latentstudio.runs import load_checkpoint
from latentstudio.train.callbacks import Callback
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

GROWN = dict(model="fastgan", data="shapes:32", resolution=128, width=4, latent_dim=16,
             batch_size=4, steps=2, preview_count=4, log_every=1, device="cpu", grow_from=64,
             grow_steps=3, grow_batch_size=8)


class StopOnce(Callback):
    """Ctrl-C at step `at` of the first run it sees, as the command line's handler does."""

    def __init__(self, at: int) -> None:
        self.at, self.done = at, False

    def on_log(self, trainer, record) -> None:
        if not self.done and trainer.step >= self.at:
            self.done = trainer._stop_requested = True


def _meta(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def _step(run: Path) -> int:
    return load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["step"]


def test_the_smaller_run_trains_beside_the_asked_one_then_grows_into_it(tmp_path, one_thread,
                                                                        capsys):
    run = train(TrainConfig(**GROWN, out=str(tmp_path / "emoji")), progress=False)
    first = tmp_path / "emoji-64px"
    assert run == tmp_path / "emoji"
    assert "training at 64 px for 3 steps in" in capsys.readouterr().err
    small, big = _meta(first), _meta(run)
    assert (small["model_config"]["resolution"], small["config"]["steps"]) == (64, 3)
    assert small["config"]["batch_size"] == 8 and small["config"]["grow_from"] is None
    assert small["grows_into"]["run"] == str(run) and _step(first) == 3
    assert big["model_config"]["resolution"] == 128 and big["config"]["batch_size"] == 4
    assert big["parent"]["grown_from"] == 64 and big["parent"]["step"] == 3
    assert big["config"]["grow_from"] == 64 and _step(run) == 2
    assert main(["train", "--resume", str(run), "--steps", "3"]) == 0  # a grown run resumes
    from latentstudio.web.runs import runs_page_html, summarize

    assert summarize(tmp_path, first)["grows_into"] == {"name": "emoji", "link": "emoji"}
    assert summarize(tmp_path, run)["parent"]["link"] == "emoji-64px"
    page = runs_page_html(tmp_path)
    assert "grows into emoji" in page and "grown from emoji-64px" in page
    assert _step(run) == 3 and _step(first) == 3


def test_stopped_in_the_smaller_run_it_resumes_there_and_ends_as_if_never_stopped(
        tmp_path, one_thread, capsys):
    whole = train(TrainConfig(**GROWN, out=str(tmp_path / "whole" / "run")), progress=False)
    run = tmp_path / "stopped" / "run"
    returned = train(TrainConfig(**GROWN, out=str(run)), callbacks=[StopOnce(at=1)],
                     progress=False)
    assert returned == run.with_name("run-64px") and not run.exists()
    assert f"continue with `latentstudio train --resume {run}`" in capsys.readouterr().err
    assert _step(returned) == 1
    assert train(resume=run, progress=False) == run
    err = capsys.readouterr().err
    assert "resuming" in err and f"growing {returned} from 64 to 128 px" in err
    for a, b in ((whole.with_name("run-64px"), returned), (whole, run)):
        ours, theirs = load_checkpoint(a / "checkpoints" / "last.pt"), \
            load_checkpoint(b / "checkpoints" / "last.pt")
        for name, state in ours["models"].items():
            for key, value in state.items():
                assert torch.equal(value, theirs["models"][name][key]), (a.name, name, key)


def test_a_longer_resume_of_a_run_still_in_its_first_stage_is_the_grown_runs(tmp_path,
                                                                            one_thread, capsys):
    run = tmp_path / "run"
    train(TrainConfig(**GROWN, out=str(run)), callbacks=[StopOnce(at=1)], progress=False)
    first = run.with_name("run-64px")
    # Stopped again straight away: the 5 steps asked for are remembered for the next resume.
    train(resume=run, overrides={"steps": 5}, callbacks=[StopOnce(at=2)], progress=False)
    assert _meta(first)["grows_into"]["config"]["steps"] == 5 and not run.exists()
    assert main(["train", "--resume", str(run), "--steps", "6", "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert (resolved["resolution"], resolved["steps"], resolved["grow_from"]) == (128, 6, 64)
    assert main(["train", "--resume", str(run)]) == 0
    assert (_step(first), _step(run)) == (3, 5)


def test_what_cannot_grow_fails_in_one_line_and_writes_nothing(tmp_path, capsys):
    base = ["train", "--data", "shapes:32", "--model", "fastgan", "--resolution", "128",
            "--width", "4", "--steps", "1", "--grow-steps", "1"]
    cases = [
        (["--grow-from", "48"], "must be --resolution's shorter side (128) halved"),
        (["--grow-from", "128"], "must be --resolution's shorter side (128) halved"),
        (["--grow-from", "-64"], "--grow-from must be a side in px"),
        (["--grow-from", "32"], "--grow-from 32: fastgan makes 64, 128, 256, 512, 1024 px"),
        (["--grow-from", "64", "--model", "dcgan", "--resolution", "64"],
         "dcgan cannot grow a run; --model fastgan can"),
        (["--grow-from", "64", "--init-from", str(tmp_path)],
         "--grow-from and --init-from both say where the run starts"),
    ]
    for i, (extra, message) in enumerate(cases):
        out = tmp_path / f"run{i}"
        assert message in one_line_error([*base, *extra, "--out", str(out)], capsys)
        assert not out.exists() and not out.with_name(f"run{i}-64px").exists()
        assert not out.with_name(f"run{i}-32px").exists()


@pytest.mark.parametrize("taken, meta, message", [
    ("run", {}, "already holds a run: continue it with --resume {run}"),
    ("run-64px", {"grows_into": {"run": "run", "config": {}}},
     "already holds this run's first stage: continue with --resume {run}"),
    ("run-64px", {}, "holds another run: move it or choose another --out"),
])
def test_an_asked_folder_in_use_is_refused_before_training(tmp_path, capsys, taken, meta,
                                                           message):
    (tmp_path / taken).mkdir()
    (tmp_path / taken / "config.json").write_text(json.dumps({"config": {"model": "fastgan"},
                                                              **meta}))
    err = one_line_error(["train", "--data", "shapes:32", "--model", "fastgan", "--resolution",
                          "128", "--width", "4", "--steps", "1", "--grow-from", "64",
                          "--out", str(tmp_path / "run")], capsys)
    assert message.format(run=tmp_path / "run") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [taken]
