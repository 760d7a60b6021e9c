"""The command line: every command's --help works; user errors are one line on stderr, exit 2."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from latentstudio.cli import build_parser, main


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_help_works_and_shows_an_example(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the description
    assert re.search(rf"examples?: latentstudio {re.escape(command)}\b", out, re.IGNORECASE), out


def test_top_level_help_lists_the_core_commands(capsys: pytest.CaptureFixture) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("train", "demo", "sample"):
        assert command in out


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "nope"], "unknown model 'nope'"),
    (["train", "--data", "/no/such/place"], "does not exist"),
    (["train", "--data", "nonsense-spec"], "unknown data spec"),
    (["train", "--resolution", "30"], "not supported"),
    (["train", "--epochs", "0"], "--epochs must be positive"),
    (["train", "--batch-size", "-4"], "--batch-size must be positive"),
    (["sample", "{tmp}", "--n", "4"], "not a latentstudio run folder"),
    (["sample", "{tmp}/missing"], "does not exist"),
    (["train", "--resume", "{tmp}"], "not a latentstudio run folder"),
])
def test_user_errors_are_one_line_exit_2(argv: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv + ["--out", str(tmp_path / "out")] if argv[0] == "train" and "--resume" not in argv
                else argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_flag_value_is_one_line_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "--epochs", "many"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--epochs" in err and len(err.strip().splitlines()) == 1


def test_empty_folder_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", f"folder:{tmp_path / 'empty'}", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_train_sample_resume_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    flags = ["--data", "shapes:64", "--width", "8", "--batch-size", "16", "--latent-dim", "8",
             "--preview-count", "4", "--out", str(run)]
    assert main(["train", *flags, "--steps", "3"]) == 0
    assert "run folder" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--steps", "5"]) == 0
    assert main(["train", "--resume", str(run), "--lr", "0.1"]) == 2  # settings are kept on resume
    assert main(["sample", str(run), "--n", "6", "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").is_file()
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "single") + "/"]) == 0
    assert len(list((tmp_path / "single").glob("*.png"))) == 3


def test_config_file_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "dcgan"\nbatch-size = 8\nlr = 0.001\n')
    assert main(["train", "--config", str(cfg), "--lr", "0.003", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"batch_size": 8' in out and '"lr": 0.003' in out
    cfg.write_text('bogus_setting = 1\n')
    assert main(["train", "--config", str(cfg), "--dry-run"]) == 2
    assert "bogus_setting" in capsys.readouterr().err


def test_python_dash_m_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "latentstudio", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "latentstudio" in out.stdout


def test_eval_every_logs_metrics_and_keeps_best(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", "shapes:64", "--width", "8", "--batch-size", "16",
                 "--latent-dim", "8", "--preview-count", "4", "--epochs", "2", "--out", str(run),
                 "--eval-every", "1", "--eval-n", "24", "--eval-metrics", "fid"]) == 0
    # --eval-extractor auto: the domain extractor at 32 px
    logged = [line for line in (run / "metrics.jsonl").read_text().splitlines() if "fid_domain" in line]
    assert len(logged) == 2
    assert (run / "checkpoints" / "best.pt").is_file()
