"""Command `export`: a run's generator as a self-contained model folder (and ONNX)."""

from __future__ import annotations

import argparse


def cmd_export(args: argparse.Namespace) -> int:
    from latentstudio.export import export_run

    formats = ["safetensors", *(["onnx"] if args.format == "onnx" else [])]
    out = export_run(args.run, args.out, checkpoint=args.checkpoint, formats=formats)
    print(f"wrote {out}: config.json, model.safetensors, samples.png, README.md"
          + (", model.onnx" if "onnx" in formats else ""))
    print(f"  load it: python -c \"import latentstudio; latentstudio.load('{out}').sample(16)\"")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a run's generator as a model folder (safetensors, model card, ONNX)",
        description="Write a self-contained model folder: config.json, model.safetensors (the "
                    "generator or VAE decoder, EMA weights where trained), samples.png and a "
                    "README.md model card; load it with latentstudio.load(DIR). Example: "
                    "latentstudio export runs/demo --out models/shapes --format onnx",
    )
    p.add_argument("run", help="run folder")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (new or empty)")
    p.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors",
                   help="onnx: also write model.onnx (opset 17, any batch size) for onnxruntime, "
                        "TouchDesigner, Unity or the web; needs pip install 'latentstudio[onnx]' "
                        "[default: safetensors]")
    p.add_argument("--checkpoint", default="last", help="last or best [default: last]")
    p.set_defaults(func=cmd_export)
