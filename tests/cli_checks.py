"""Checks on the command line shared by the test folders (importable as `cli_checks`)."""

from __future__ import annotations

import pytest

from latentstudio.cli import main


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The command's stderr, checked to be exit 2 with one `error:` line (argparse's or ours)."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse reports bad flag values this way
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "error:" in err and "\n" not in err and "Traceback" not in err
    return err
