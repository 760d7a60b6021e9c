"""Evaluate generated images against real ones: the metric registry, `evaluate_features`
(pure math on feature vectors), `evaluate_images` and `evaluate_run` (which writes eval.json).

Values are keyed by metric name and extractor (`fid_lite0`) and shown with the extractor in the
label ("FID (lite0)"), so a lite0 number is never mistaken for an Inception FID.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from latentstudio import atomic
from latentstudio.data.base import ImageSet
from latentstudio.errors import UserError
from latentstudio.metrics.extractors import (
    SMALL_IMAGES,
    Extractor,
    build_extractor,
    extract_features,
)
from latentstudio.metrics.fid import frechet_distance_from_stats, gaussian_stats
from latentstudio.metrics.kid import kernel_distance
from latentstudio.metrics.memorisation import memorisation_score, pixel_vectors
from latentstudio.metrics.precision_recall import density_coverage, precision_recall
from latentstudio.metrics.stats import RealFeatures, real_features

if TYPE_CHECKING:
    from latentstudio.runs import Run

DISPLAY_NAMES = {
    "fid": "FID", "kid": "KID", "kid_std": "KID std", "precision": "precision",
    "recall": "recall", "density": "density", "coverage": "coverage",
    "memorisation": "memorisation", "nn_ratio": "NN-distance ratio",
    "memorisation_px": "memorisation",
}
PIXEL_VALUES = {"memorisation_px"}  # computed on pixels: the same whatever the extractor
LOWER_IS_BETTER = {"fid", "kid", "kid_std", "memorisation", "memorisation_px"}
# Below this many real images FID's bias (it grows like 1/N) swamps differences between runs;
# KID is unbiased at any N, so it leads the report there.
SMALL_REAL_SET = 1000
# Default sample counts when --n is not given: enough for stable numbers where features are
# fast (a GPU), affordable on a CPU (lite0 embeds ~15-30 images/s on a laptop core).
DEFAULT_N = {"cuda": 10000, "cpu": 2000}
MIN_DEFAULT_N = 200
# SMALL_IMAGES: on 32 px `shapes`, faint noise (std 6/255) on real images also raised FID (lite0)
# from 4 to 95, more than recolouring every image did (40).


def metric_key(name: str, extractor: str) -> str:
    """The machine key of a value, e.g. `fid_lite0` (eval.json, metrics.jsonl, --sort)."""
    return name if name in PIXEL_VALUES else f"{name}_{extractor}"


def metric_label(name: str, extractor: str) -> str:
    """The human label of a value, e.g. `FID (lite0)`."""
    return f"{DISPLAY_NAMES.get(name, name)} ({'pixels' if name in PIXEL_VALUES else extractor})"


@dataclass
class EvalConfig:
    """What to compute. `metrics`: names from METRICS; `n`: generated and real images each
    (None: default_n, from the device and the size of the real set)."""

    metrics: tuple[str, ...] = ("fid", "kid", "pr", "dc", "mem")
    n: int | None = None
    extractor: str = "auto"
    weights: str | None = None
    seed: int = 0
    batch_size: int = 64
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    dc_k: int = 5
    memorisation_threshold: float = 0.5
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise UserError(f"unknown metric {', '.join(unknown) or '(none)'}: use a comma list of "
                            f"{', '.join(METRICS)} (e.g. --metrics fid,kid,pr)")
        if self.n is not None and self.n < 8:
            raise UserError(f"--n {self.n} is too small: use at least 8 (1000+ for stable numbers)")
        if self.batch_size <= 0 or self.kid_subsets <= 0 or self.kid_subset_size < 2:
            raise UserError("batch size, KID subsets and KID subset size must be positive")


def default_n(n_real: int, device: str) -> int:
    """Samples to compare when none are asked for: as many as the real images (more adds
    little to the real side), at least MIN_DEFAULT_N, at most what the device does in minutes."""
    cap = DEFAULT_N["cuda" if str(device).startswith("cuda") else "cpu"]
    return max(MIN_DEFAULT_N, min(cap, n_real))


MetricFn = Callable[[RealFeatures, np.ndarray, EvalConfig], dict[str, float]]
METRICS: dict[str, MetricFn] = {}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Add a metric under `name` (the name used in --metrics)."""

    def wrap(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        return fn

    return wrap


@register_metric("fid")
def _fid(real: RealFeatures, fake: np.ndarray, cfg: EvalConfig) -> dict[str, float]:
    return {"fid": frechet_distance_from_stats(real.stats, gaussian_stats(fake))}


@register_metric("kid")
def _kid(real: RealFeatures, fake: np.ndarray, cfg: EvalConfig) -> dict[str, float]:
    r = kernel_distance(real.features, fake, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
    # One subset (both sets no larger than a subset) has no spread: a std of 0 would read as certainty.
    return {"kid": r.mean, "kid_std": r.std} if r.subsets > 1 else {"kid": r.mean}


@register_metric("pr")
def _pr(real: RealFeatures, fake: np.ndarray, cfg: EvalConfig) -> dict[str, float]:
    r = precision_recall(real.features, fake, cfg.pr_k)
    return {"precision": r.precision, "recall": r.recall}


@register_metric("dc")
def _dc(real: RealFeatures, fake: np.ndarray, cfg: EvalConfig) -> dict[str, float]:
    r = density_coverage(real.features, fake, cfg.dc_k)
    return {"density": r.density, "coverage": r.coverage}


@register_metric("mem")
def _mem(real: RealFeatures, fake: np.ndarray, cfg: EvalConfig) -> dict[str, float]:
    r = memorisation_score(real.features, fake, cfg.memorisation_threshold)
    return {"memorisation": r.score, "nn_ratio": r.median_ratio}


def evaluate_features(real: RealFeatures, fake: np.ndarray, config: EvalConfig) -> dict[str, float]:
    """Every requested metric of generated features `fake` (N, D) against the real ones."""
    values: dict[str, float] = {}
    for name in config.metrics:
        values.update(METRICS[name](real, fake, config))
    return values


@dataclass
class EvalResult:
    """Values by plain name (`fid`), with the extractor and sample counts they came from."""

    extractor: str
    values: dict[str, float]
    n_real: int
    n_fake: int
    seed: int
    info: dict = field(default_factory=dict)

    def keyed(self) -> dict[str, float]:
        return {metric_key(k, self.extractor): v for k, v in self.values.items()}

    def labels(self) -> dict[str, str]:
        return {metric_key(k, self.extractor): metric_label(k, self.extractor) for k in self.values}


def evaluate_images(real: ImageSet, fake: torch.Tensor, config: EvalConfig,
                    extractor: Extractor | None = None) -> EvalResult:
    """Compare generated images (uint8, or float in [-1, 1]) with (n of) the real dataset."""
    if config.n is None:
        config = replace(config, n=len(fake))
    extractor = extractor or build_extractor(config.extractor, real, config.device, config.weights,
                                             config.progress)
    reals = real_features(real, extractor, config.n, config.seed, config.batch_size, config.progress)
    fakes = extract_features(extractor, fake, config.batch_size, config.progress, "generated images")
    values = evaluate_features(reals, fakes, config)
    if "mem" in config.metrics:
        real_px = pixel_vectors(real.images[torch.from_numpy(reals.index)])
        values["memorisation_px"] = memorisation_score(real_px, pixel_vectors(fake),
                                                       config.memorisation_threshold).score
    return EvalResult(extractor.name, values, len(reals.features), len(fakes), config.seed,
                      {"precision": extractor.precision})


def _last_step(run_dir: Path) -> int | None:
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def read_eval_json(run_dir: Path) -> dict:
    """RUN/eval.json as written by write_eval_json, or {} when missing or unreadable."""
    try:
        data = json.loads((Path(run_dir) / "eval.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def headline_extractor(data: dict) -> str | None:
    """The extractor whose scores stand for a run: the default one eval chose, else the most
    recently used one (values from different extractors are never compared)."""
    chosen = data.get("default_extractor")
    evaluations = data.get("evaluations")
    if isinstance(chosen, str):
        return chosen
    if not isinstance(evaluations, dict) or not evaluations:
        return None
    def when(name: str) -> str:
        info = evaluations[name].get("info") if isinstance(evaluations[name], dict) else None
        return str(info.get("time", "")) if isinstance(info, dict) else ""
    return max(evaluations, key=when)


def headline_scores(run_dir: Path) -> list[dict]:
    """The KID and FID values of RUN/eval.json from one extractor (headline_extractor) as
    [{key, label, value}], KID first (unbiased at any sample size), for a card or a summary."""
    data = read_eval_json(run_dir)
    values, labels = data.get("metrics"), data.get("labels")
    if not isinstance(values, dict):
        return []
    labels = labels if isinstance(labels, dict) else {}
    extractor = headline_extractor(data)
    out = []
    for name in ("kid", "fid"):
        for key, value in values.items():
            base, _, ext = key.rpartition("_")
            if base == name and (extractor is None or ext == extractor) \
                    and isinstance(value, (int, float)) and math.isfinite(value):
                out.append({"key": key, "label": str(labels.get(key, key)), "value": float(value)})
    return out


def write_eval_json(run_dir: Path, result: EvalResult) -> Path:
    """Merge `result` into run_dir/eval.json: the latest evaluation per extractor, plus a flat
    `metrics` map ({"fid_lite0": ...}) and `labels` ({"fid_lite0": "FID (lite0)"})."""
    path = run_dir / "eval.json"
    data = read_eval_json(run_dir)
    data.setdefault("evaluations", {})[result.extractor] = asdict(result)
    if result.info.get("chosen") == "default":
        data["default_extractor"] = result.extractor  # what cards and summaries compare by
    data.setdefault("metrics", {}).update(result.keyed())
    data.setdefault("labels", {}).update(result.labels())
    return atomic.write_json(path, data)


def evaluate_run(run_dir: str | Path, config: EvalConfig, checkpoint: str = "last") -> EvalResult:
    """Sample `config.n` images from a run (checkpoints/CHECKPOINT.pt), compare them with its
    training data, and merge the values into RUN/eval.json."""
    from latentstudio.runs import load_run

    run = load_run(run_dir, device=config.device, checkpoint=checkpoint)
    dataset = run.dataset(progress=config.progress)
    device = str(run.device)
    if config.n is None:
        config = replace(config, n=default_n(len(dataset), device))
    extractor = build_extractor(config.extractor, dataset, device, config.weights, config.progress)
    fake = sample_run(run, config.n, config.seed, config.progress)
    result = evaluate_images(dataset, fake, config, extractor)
    result.info = {**result.info, "step": _last_step(Path(run.path)), "checkpoint": checkpoint,
                   "data": dataset.spec, "resolution": dataset.resolution,
                   "time": time.strftime("%Y-%m-%d %H:%M:%S"), "metrics": list(config.metrics),
                   "chosen": "default" if config.extractor == "auto" else "asked"}
    write_eval_json(Path(run.path), result)
    return result


def sample_run(run: Run, n: int, seed: int = 0, progress: bool = True,
               batch_size: int = 256) -> torch.Tensor:
    """run.sample(n, seed) (the same images), in batches under a progress bar."""
    from tqdm.auto import tqdm

    z, labels = run.latents(n, seed), run.labels_for(n, None, seed)
    out = []
    for start in tqdm(range(0, n, batch_size), desc="generating", unit="batch", leave=False,
                      disable=not progress or n <= batch_size):
        y = labels[start:start + batch_size] if labels is not None else None
        out.append(run.generate(z[start:start + batch_size], y, batch_size))
    return torch.cat(out)


def format_result(result: EvalResult) -> str:
    """A small two-column table of labelled values, with which direction is better; KID first,
    and a warning, when the real set is too small for FID to mean much."""
    rows = []
    small = result.n_real < SMALL_REAL_SET
    order = sorted(result.values, key=lambda k: k not in ("kid", "kid_std")) if small \
        else list(result.values)
    for name in order:
        value = result.values[name]
        better = "lower is better" if name in LOWER_IS_BETTER else "higher is better"
        if name == "nn_ratio":
            better = "~1 fresh, ~0 copies"
        rows.append((metric_label(name, result.extractor), f"{value:.4g}", better))
    width = max(len(r[0]) for r in rows)
    head = f"{result.n_fake} generated vs {result.n_real} real images, seed {result.seed}"
    lines = [head] + [f"  {a:<{width}}  {b:>9}  ({c})" for a, b, c in rows]
    if small:
        lines.append(f"note: only {result.n_real} real images: FID is strongly biased upwards at "
                     f"this size (it falls as N grows), so compare runs by KID, which is unbiased; "
                     f"FID needs {SMALL_REAL_SET}+ real images")
    resolution = result.info.get("resolution")
    if result.extractor != "domain" and resolution is not None and resolution <= SMALL_IMAGES:
        lines.append(f"note: at {resolution} px, {result.extractor} features mostly "
                     "measure pixel texture; compare runs with --extractor domain too")
    return "\n".join(lines)
