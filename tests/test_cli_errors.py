"""Wrong command lines: one line naming the program once, with the nearest command or flag."""

from __future__ import annotations

import pytest

from latentstudio.cli import main


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    return err


def test_top_level_error_names_the_program_once(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, ["--bogus"])
    assert err.startswith("latentstudio: error: unrecognized arguments: --bogus")
    assert "latentstudio latentstudio" not in err


def test_mistyped_command_suggests_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, ["trian"])
    assert err.startswith("latentstudio: error:") and "did you mean 'train'?" in err


def test_mistyped_flag_is_reported_by_its_command_with_the_nearest(
        capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, ["train", "--epohcs", "3", "--dry-run"])
    assert err.startswith("latentstudio train: error: unrecognized arguments: --epohcs 3")
    assert "did you mean --epochs?" in err
    err = _error(capsys, ["runs", "--color", "nevr"])
    assert err.startswith("latentstudio runs: error:") and "did you mean 'never'?" in err


def test_no_suggestion_when_nothing_is_close(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, ["train", "--zzzzzz", "--dry-run"])
    assert "did you mean" not in err
