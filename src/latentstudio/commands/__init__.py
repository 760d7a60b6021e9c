"""Command-line commands, one module per area; see latentstudio.cli."""

import argparse


def positive_int(value: str) -> int:
    """argparse type: a whole number above zero."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {n}")
    return n
