"""Seed lists as users type them: `0-35`, `1,5,10-20` (ranges include both ends).

Each seed names one latent: seed S is the latent `sample --seed S --n 1` draws, the one an
`interpolate` keyframe S uses, so a seed listed anywhere gives the same picture.
"""

from __future__ import annotations

import re

from latentstudio.errors import UserError

MAX_SEEDS = 10_000         # seeds in one list: a sheet or a walk, not hours of work
MAX_SEED = 2**63 - 1       # torch.Generator.manual_seed's largest seed the gallery also accepts
_RANGE = re.compile(r"^(\d+)-(\d+)$")


def is_seed_spec(item: str) -> bool:
    """Whether one comma-separated entry is a seed (`17`) or a seed range (`10-20`)."""
    item = item.strip()
    return item.isdigit() or _RANGE.match(item) is not None


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """'1,5,10-12' -> [1, 5, 10, 11, 12], or a one-line UserError naming the bad entry."""
    items = [s.strip() for s in str(text).split(",")]
    seeds: list[int] = []
    for item in items:
        seeds += _expand(item, text, flag, len(seeds))
    return seeds


def expand_ranges(items: list[str], flag: str = "--seeds") -> list[str]:
    """Keyframe entries with each seed range `A-B` written out as seeds (and every seed checked);
    other entries (files) kept as they are."""
    out: list[str] = []
    for item in items:
        if is_seed_spec(item):
            out += [str(s) for s in _expand(item.strip(), ",".join(items), flag, len(out))]
        else:
            out.append(item)
    return out


def _expand(item: str, text: str, flag: str, before: int) -> list[int]:
    m = _RANGE.match(item)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise UserError(f"{flag} {text}: a range goes up, so write {hi}-{lo} instead of {item}")
    elif item.isdigit():
        lo = hi = int(item)
    elif item.startswith("-") and item[1:].isdigit():
        raise UserError(f"{flag} {text}: seeds are whole numbers >= 0, not {item}")
    else:
        what = "empty entry" if not item else f"bad entry {item!r}"
        raise UserError(f"{flag} {text}: {what}; give seeds and ranges like 0-35 or 1,5,10-20")
    if hi > MAX_SEED:
        raise UserError(f"{flag} {text}: seeds go up to {MAX_SEED}, not {hi}")
    if before + hi - lo + 1 > MAX_SEEDS:
        raise UserError(f"{flag} {text}: at most {MAX_SEEDS} seeds at a time, this is "
                        f"{before + hi - lo + 1} or more")
    return list(range(lo, hi + 1))
