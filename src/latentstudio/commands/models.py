"""`latentstudio models`: the model families, what each is, and the settings it trains with."""

from __future__ import annotations

import argparse
import json
from typing import Any


def family_table() -> list[dict[str, Any]]:
    """One dict per registered family: name, kind, conditional, description, the defaults
    `latentstudio train --model NAME` resolves to (the family's own over the global ones), and
    the family's own settings with their defaults."""
    from latentstudio.models import all_families
    from latentstudio.train.config import TrainConfig, resolve_config

    rows = []
    for f in all_families():
        cfg = resolve_config(TrainConfig(model=f.name), f).to_dict()
        defaults = {k: cfg[k] for k in f.hooks.shown_settings if cfg[k] is not None}
        if defaults.get("optimizer") == "rmsprop":
            defaults.pop("betas", None)
        if "batch_norm" in f.defaults:
            defaults["batch_norm"] = f.defaults["batch_norm"]
        rows.append({"name": f.name, "kind": f.kind, "conditional": f.conditional,
                     "description": f.description, "defaults": defaults,
                     "settings": cfg["family_settings"]})
    return rows


def cmd_models(args: argparse.Namespace) -> int:
    from latentstudio.train.config import as_flag

    rows = family_table()
    if args.json:
        print(json.dumps(rows, indent=2, default=list))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        tag = r["kind"] + (", conditional" if r["conditional"] else "")
        print(f"{r['name']:<{width}}  ({tag}) {r['description']}")
        defaults = " ".join(as_flag(k, v) for k, v in r["defaults"].items() if k != "batch_norm")
        if "batch_norm" in r["defaults"]:
            defaults += f" (batch norm in D: {'on' if r['defaults']['batch_norm'] else 'off'})"
        if defaults:
            print(f"{'':<{width}}  defaults: {defaults}")
        own = " ".join(as_flag(k, v) for k, v in r["settings"].items())
        if own:
            print(f"{'':<{width}}  its own: {own}")
    print("\nTrain one with: latentstudio train --model NAME --data shapes (flags override defaults)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list the model families and their default settings",
        description="List every model family usable as `latentstudio train --model NAME`, with "
                    "what it is and the settings it trains with unless flags say otherwise. "
                    "Example: latentstudio models --json",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_models)
