"""The command line: each command parses its flags, builds a config, calls one library function.

Commands live in small modules under latentstudio/commands/; each has `register(subparsers)`,
which adds its parser and sets `func` to a function taking the parsed namespace.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys

from latentstudio import __version__
from latentstudio.errors import Interrupted, UserError

# Modules under latentstudio.commands, in the order their commands appear in --help.
COMMAND_MODULES = ["train", "data", "serve", "models", "metrics", "explore", "estimate", "dream",
                   "export"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (exit 2) instead of usage plus error, with
    the nearest command or flag when the mistake looks like a typo."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}{self.suggestion(message)} (see --help)\n")

    def suggestion(self, message: str) -> str:
        """'; did you mean ...?' for a mistyped command, choice or flag, else ''."""
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            close = difflib.get_close_matches(m.group(1), re.findall(r"'([^']*)'", m.group(2)), 1)
            return f"; did you mean {close[0]!r}?" if close else ""
        m = re.match(r"unrecognized arguments: (.*)", message)
        if not m:
            return ""
        flags = [f for a in self._actions for f in a.option_strings]
        for word in m.group(1).split():
            if word.startswith("-"):
                close = difflib.get_close_matches(word.split("=", 1)[0], flags, 1)
                if close:
                    return f"; did you mean {close[0]}?"
        return ""


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every command registered."""
    parser = _Parser(
        prog="latentstudio",
        description="Train, explore, curate and evaluate generative image models.",
    )
    parser.add_argument("--version", action="version", version=f"latentstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"latentstudio.commands.{name}").register(sub)
    parser.set_defaults(_commands=sub.choices)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; user errors print one line on stderr and return 2."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # reported by the command's own parser, which knows its flags
        command = args._commands.get(getattr(args, "command", None), parser)
        command.error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted:  # already said what was saved and how to continue
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
