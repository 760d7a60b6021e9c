"""Command-line commands, one module per area; see latentstudio.cli.

The argparse types here turn a bad number into the parser's one-line error (exit 2).
"""

import argparse
import math


def _whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None


def positive_int(value: str) -> int:
    """argparse type: a whole number above zero."""
    n = _whole_number(value)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {n}")
    return n


def non_negative_int(value: str) -> int:
    """argparse type: a whole number, zero or above (seeds)."""
    n = _whole_number(value)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {n}")
    return n


def finite_float(value: str) -> float:
    """argparse type: a number, not nan or infinity."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value}")
    return x


def positive_float(value: str) -> float:
    """argparse type: a finite number above zero."""
    x = finite_float(value)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return x


def non_negative_float(value: str) -> float:
    """argparse type: a finite number, zero or above."""
    x = finite_float(value)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return x
