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


def finite_float(value: str) -> float:
    """argparse type: a number, not nan or infinity."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value}")
    return x


def _above_zero(x: float) -> float:
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {x:g}")
    return x


def _zero_or_more(x: float) -> float:
    if x < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {x:g}")
    return x


def positive_int(value: str) -> int:
    """argparse type: a whole number above zero."""
    return _above_zero(_whole_number(value))


def non_negative_int(value: str) -> int:
    """argparse type: a whole number, zero or above (seeds)."""
    return _zero_or_more(_whole_number(value))


def positive_float(value: str) -> float:
    """argparse type: a finite number above zero."""
    return _above_zero(finite_float(value))


def non_negative_float(value: str) -> float:
    """argparse type: a finite number, zero or above."""
    return _zero_or_more(finite_float(value))
