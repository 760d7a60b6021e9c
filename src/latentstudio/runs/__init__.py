"""The run folder: one owner for what `train` writes and everything else reads.

A run folder holds config.json (the settings and the data it was trained on), checkpoints/
(last.pt, best.pt), metrics.jsonl, samples/epoch_NNNN.png preview grids, progress.gif,
losses.png and tb/. `explore`, `metrics`, `dream` and `web` read runs only through this package.

    from latentstudio.runs import load_run
    run = load_run("runs/demo")
    images = run.sample(16, seed=0)   # (16, C, H, W) in [-1, 1]
"""

from latentstudio.runs.checkpoint import load_checkpoint, load_models, restore_rng, save_checkpoint
from latentstudio.runs.folder import (
    default_run_dir,
    drop_metrics_after,
    export_source,
    finite_or_null,
    metrics_line,
    read_meta,
    read_metrics,
    read_run_config,
    sample_grids,
    total_steps,
    write_run_config,
)
from latentstudio.runs.load import Run, load_run
from latentstudio.runs.preview import preview_labels, preview_latents, preview_layout

__all__ = [
    "Run", "default_run_dir", "drop_metrics_after", "export_source", "finite_or_null", "metrics_line",
    "load_checkpoint", "load_models", "load_run",
    "preview_labels", "preview_latents", "preview_layout", "read_meta", "read_metrics",
    "read_run_config", "restore_rng", "sample_grids", "save_checkpoint", "total_steps",
    "write_run_config",
]
