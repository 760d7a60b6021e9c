"""Exported models: a self-contained folder other programs load, and `load` to sample from it.

`export_run(RUN, DIR)` writes, in the layout diffusers and pythae users know:
  config.json        what the model is (family, kind, model config, resolution, channels, latent
                     size), the data and steps it was trained on, its metrics, the version
  model.safetensors  the generator's (or VAE decoder's) weights, the EMA copy where trained
  samples.png        16 samples, seed 0, as `latentstudio sample DIR --n 16 --seed 0` draws them
  README.md          a model card (Hugging Face style YAML front matter) showing all of that
  model.onnx         with `onnx=True`: the same network for onnxruntime (TouchDesigner, Unity, web)

`load(DIR or RUN)` returns an `ImageGenerator` whose samples for a seed are those `latentstudio
sample` draws, without importing the training code.
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latentstudio import __version__, atomic
from latentstudio.errors import UserError
from latentstudio.models import Family, Kind, ModelConfig, get_family

EXPORT_FORMAT = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
ONNX_FILE = "model.onnx"
CARD = "README.md"
SAMPLES = "samples.png"
CARD_SAMPLES = 16
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| an export must stay within
ONNX_HINT = "pip install 'latentstudio[onnx]'"
BATCH = 256  # images generated at a time, as `latentstudio sample` does


@dataclass
class ImageGenerator:
    """A network that turns latents into images in [-1, 1], from an export folder or a run."""

    network: nn.Module
    family: Family
    model_config: ModelConfig
    meta: dict[str, Any]  # the export's config.json, or the run's
    path: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def kind(self) -> Kind:
        return self.family.hooks

    @property
    def latent_dim(self) -> int:
        return self.model_config.latent_dim

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("data", {}).get("class_names") or [])

    def to(self, device: str | torch.device) -> ImageGenerator:
        """Move the network to `device` (latents are still drawn on the CPU); returns self."""
        from latentstudio.devices import resolve_device

        self.device = resolve_device(device)
        self.network.to(self.device)
        return self

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """n latents from `seed`, the ones `latentstudio sample --seed` draws."""
        from latentstudio.runs.load import seeded_latents

        return seeded_latents(self.kind, n, self.latent_dim, seed)

    def labels(self, n: int, class_: int | str | None = None) -> torch.Tensor | None:
        """Labels of a conditional model (`class_` repeated, or cycling through the classes)."""
        from latentstudio.runs.load import labels_for

        return labels_for(self.family.name, self.model_config.num_classes, self.class_names, n,
                          class_)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                 batch_size: int = BATCH) -> torch.Tensor:
        """Images in [-1, 1] (N, C, H, W) on the CPU for latents z (N, latent size)."""
        from latentstudio.runs.load import generate_images

        return generate_images(self.network, z, labels, self.device, batch_size)

    def sample(self, n: int, seed: int = 0, class_: int | str | None = None) -> torch.Tensor:
        """n images in [-1, 1] (N, C, H, W), equal to `latentstudio sample --n n --seed seed`'s."""
        if n <= 0:
            raise UserError(f"n must be positive, got {n}")
        return self.generate(self.latents(n, seed), self.labels(n, class_))

    def interpolate(self, a_seed: int, b_seed: int, steps: int = 8,
                    class_: int | str | None = None) -> torch.Tensor:
        """`steps` images (steps, C, H, W) along the arc (slerp) from the first latent of seed
        a_seed to that of b_seed, both ends included, as `latentstudio interpolate A,B` walks."""
        from latentstudio.explore.latents import slerp

        if steps < 2:
            raise UserError(f"steps must be 2 or more, got {steps}")
        a, b = self.latents(1, a_seed)[0], self.latents(1, b_seed)[0]
        z = slerp(a, b, torch.linspace(0, 1, steps))
        labels = self.labels(steps, class_ if class_ is not None else 0) \
            if self.model_config.num_classes else None
        return self.generate(z, labels)


# ----- loading

def load(path: str | Path, device: str | torch.device = "cpu",
         checkpoint: str = "last") -> ImageGenerator:
    """The image network of an export folder (`latentstudio export`) or a run folder (its
    CHECKPOINT, EMA weights where trained), in eval mode on `device`."""
    path = Path(path).expanduser()
    meta = _read_json(path / CONFIG) if (path / CONFIG).is_file() else None
    if meta is not None and "export_format" in meta:
        gen = _load_export(path, meta)
    elif meta is not None and isinstance(meta.get("config"), dict):
        gen = _load_run(path, checkpoint)
    elif not path.exists():
        raise UserError(f"{path} does not exist")
    else:
        raise UserError(f"{path} is neither a latentstudio export (config.json and {WEIGHTS}) nor "
                        "a run folder")
    return gen.to(device)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        raise UserError(f"{path} is damaged or not JSON") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a latentstudio config")
    return data


def _build(family: Family, model_config: ModelConfig, state: dict[str, torch.Tensor],
           source: str) -> nn.Module:
    """The family's image network with `state` loaded, in eval mode without gradients."""
    network = family.build(model_config)[family.hooks.image_module]
    try:
        network.load_state_dict(state)
    except RuntimeError:
        raise UserError(f"{source} does not fit a {family.name} network with its config.json's "
                        "settings; it is damaged or was edited") from None
    return network.eval().requires_grad_(False)


def _model_config(meta: dict[str, Any], source: Path) -> ModelConfig:
    try:
        return ModelConfig(**meta["model_config"])
    except (TypeError, KeyError):
        raise UserError(f"{source / CONFIG} is damaged or from an incompatible version") from None


def _load_export(path: Path, meta: dict[str, Any]) -> ImageGenerator:
    if meta["export_format"] != EXPORT_FORMAT:
        raise UserError(f"{path} is an export of format {meta['export_format']}; this latentstudio "
                        f"reads format {EXPORT_FORMAT}: upgrade latentstudio")
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise UserError("loading an export needs the safetensors package: pip install "
                        "safetensors") from None
    if not (path / WEIGHTS).is_file():
        raise UserError(f"{path} has no {WEIGHTS}")
    try:
        state = load_file(str(path / WEIGHTS), device="cpu")
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path / WEIGHTS} is not readable ({e})") from None
    family = get_family(str(meta.get("model")))
    model_config = _model_config(meta, path)
    return ImageGenerator(_build(family, model_config, state, str(path / WEIGHTS)), family,
                          model_config, meta, path)


def _load_run(path: Path, checkpoint: str) -> ImageGenerator:
    from latentstudio.runs.checkpoint import load_checkpoint
    from latentstudio.runs.folder import read_run_config

    meta = read_run_config(path)
    family = get_family(str(meta["config"].get("model")))
    model_config = _model_config(meta, path)
    payload = load_checkpoint(path / "checkpoints" / f"{checkpoint}.pt")
    name = family.hooks.image_module
    weights = payload["models"]
    state = weights.get(f"{name}_ema", weights.get(name))
    if state is None:
        raise UserError(f"{path} has no weights for {name!r} in checkpoints/{checkpoint}.pt")
    meta = {**meta, "progress": payload.get("progress", {}), "ema": f"{name}_ema" in weights,
            "checkpoint": checkpoint}
    return ImageGenerator(_build(family, model_config, state, str(path)), family, model_config,
                          meta, path)


# ----- exporting

def export_run(run: str | Path, out: str | Path, checkpoint: str = "last",
               formats: Sequence[str] = ("safetensors",)) -> Path:
    """Write the export folder `out` for RUN's CHECKPOINT; "onnx" in `formats` adds model.onnx.

    Everything is computed before the first file is written, and config.json is written last,
    so a failed export leaves no folder that looks complete.
    """
    run, out = Path(run).expanduser(), Path(out).expanduser()
    unknown = sorted(set(formats) - {"safetensors", "onnx"})
    if unknown:
        raise UserError(f"--format must be safetensors or onnx, got {', '.join(unknown)}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any((out / name).exists() for name in (CONFIG, WEIGHTS, ONNX_FILE)):
        raise UserError(f"{out} already holds an export; choose another --out or remove it")
    if not (run / CONFIG).is_file():
        raise UserError(f"{run} is not a latentstudio run folder (no config.json)")
    try:
        from safetensors.torch import save
    except ImportError:
        raise UserError("export needs the safetensors package: pip install safetensors") from None
    gen = load(run, checkpoint=checkpoint)
    onnx_bytes = onnx_export(gen) if "onnx" in formats else None
    state = {k: v.detach().cpu().clone().contiguous() for k, v in gen.network.state_dict().items()}
    meta = export_config(gen, run, checkpoint, onnx=onnx_bytes is not None)
    weights = save(state, metadata={"format": "pt", "latentstudio_model": gen.family.name})
    grid = _samples_grid(gen)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(out / WEIGHTS, weights)
        if onnx_bytes is not None:
            atomic.write_bytes(out / ONNX_FILE, onnx_bytes)
        from latentstudio.images import save_png

        save_png(grid, out / SAMPLES)
        atomic.write_text(out / CARD, model_card(meta))
        atomic.write_json(out / CONFIG, meta)
    except OSError as e:
        raise UserError(f"cannot write {e.filename or out}: {e.strerror or e}") from None
    return out


def _samples_grid(gen: ImageGenerator) -> Any:
    from latentstudio.images import VIEW_SIDE, enlarge, make_grid

    return enlarge(make_grid(gen.sample(CARD_SAMPLES, seed=0)), VIEW_SIDE)


def _metrics(run: Path) -> dict[str, Any]:
    """{"values": {key: number}, "labels": {key: label}} from RUN/eval.json, or {}."""
    try:
        data = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    values = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        return {}
    values = {k: v for k, v in values.items() if isinstance(v, (int, float))}
    labels = data.get("labels") if isinstance(data.get("labels"), dict) else {}
    return {"values": values, "labels": {k: str(labels.get(k, k)) for k in values}}


def export_config(gen: ImageGenerator, run: Path, checkpoint: str, onnx: bool = False) -> dict[str, Any]:
    """config.json of an export of run folder `run` loaded as `gen`."""
    meta, mc = gen.meta, gen.model_config
    data = meta.get("data", {})
    progress = meta.get("progress", {})
    return {
        "export_format": EXPORT_FORMAT,
        "latentstudio_version": __version__,
        "model": gen.family.name,
        "kind": gen.family.kind,
        "network": gen.kind.image_module,
        "ema": bool(meta.get("ema")),
        "resolution": mc.resolution,
        "channels": mc.channels,
        "latent_size": mc.latent_dim,
        "num_classes": mc.num_classes,
        "model_config": dataclasses.asdict(mc),
        "latents": "standard normal; latentstudio draws seed S on the CPU with "
                   "torch.Generator().manual_seed(S) and torch.randn(n, latent_size)",
        "data": {k: data.get(k) for k in ("spec", "count", "fingerprint", "class_names")},
        "training": {"run": str(run.resolve()), "checkpoint": checkpoint,
                     "step": progress.get("step"), "epoch": progress.get("epoch"),
                     "config": meta.get("config", {})},
        "parent": meta.get("parent"),
        "metrics": _metrics(run),
        "files": {"weights": WEIGHTS, "samples": SAMPLES, **({"onnx": ONNX_FILE} if onnx else {})},
    }


def model_card(meta: dict[str, Any]) -> str:
    """README.md of an export: YAML front matter, samples, data, training, metrics, how to load."""
    model, kind = meta["model"], meta["kind"]
    conditional = meta["num_classes"] > 0
    task = "class-conditional" if conditional else "unconditional"
    tags = ["latentstudio", kind, model, "image-generation", f"{task}-image-generation"]
    training, data = meta["training"], meta["data"]
    config = training.get("config", {})
    colour = "RGB" if meta["channels"] == 3 else "grayscale"
    res = meta["resolution"]
    lines = ["---", "library_name: latentstudio", "tags:", *[f"- {t}" for t in tags],
             "pipeline_tag: unconditional-image-generation", "---", "",
             f"# {model} on {data.get('spec')}", "",
             f"A {model} ({kind}) that draws {res}x{res} {colour} images from latents of "
             f"{meta['latent_size']} numbers, trained with latentstudio {meta['latentstudio_version']}. "
             f"Weights: the {meta['network']}" + (" (EMA copy)." if meta["ema"] else "."), "",
             f"![{CARD_SAMPLES} samples, seed 0]({SAMPLES})", "", "## Training", "",
             "| | |", "|---|---|",
             f"| data | `{data.get('spec')}` ({data.get('count')} images) |",
             f"| steps | {training.get('step')} (epoch {training.get('epoch')}, checkpoint "
             f"{training.get('checkpoint')}) |"]
    for key in ("batch_size", "lr", "loss", "ema", "augment", "seed"):
        if config.get(key) is not None:
            lines.append(f"| {key.replace('_', ' ')} | {config[key]} |")
    if conditional:
        lines.append(f"| classes | {', '.join(data.get('class_names') or []) or meta['num_classes']} |")
    parent = meta.get("parent")
    if isinstance(parent, dict):
        lines.append(f"| fine-tuned from | `{Path(str(parent.get('run'))).name}` at step "
                     f"{parent.get('step')} |")
    lines += ["", "## Metrics", ""]
    metrics = meta.get("metrics") or {}
    if metrics.get("values"):
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {metrics['labels'].get(k, k)} | {v:.4g} |" for k, v in metrics["values"].items()]
    else:
        lines.append("Not evaluated: run `latentstudio eval RUN` before exporting to list FID/KID here.")
    lines += ["", "## Use", "", "```python", "import latentstudio  # pip install latentstudio", "",
              'model = latentstudio.load("THIS_FOLDER")  # .to("cuda") to move it',
              "images = model.sample(16, seed=0)  # (16, C, H, W) in [-1, 1]",
              "frames = model.interpolate(0, 1, steps=8)  # from seed 0's latent to seed 1's",
              "```"]
    if "onnx" in meta["files"]:
        inputs = "`z` (float32, batch x latent size)" + (
            " and `labels` (int64, batch)" if conditional else "")
        lines += ["", f"`{ONNX_FILE}` (opset {ONNX_OPSET}, any batch size) takes {inputs} and gives "
                  "`images` (float32, batch x C x H x W, in [-1, 1]); draw z from a standard "
                  "normal distribution."]
    return "\n".join(lines) + "\n"


# ----- ONNX

class _OnnxGraph(nn.Module):
    """The image network with the ONNX inputs' names and order: (z) or (z, labels)."""

    def __init__(self, network: nn.Module, conditional: bool) -> None:
        super().__init__()
        self.network = network
        self.conditional = conditional

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.network(z, labels if self.conditional else None)


def _baked_network(gen: ImageGenerator) -> nn.Module:
    """A fresh copy of gen's network on the CPU with spectral norm folded into plain weights
    (in eval mode it divides by a stored sigma; ONNX has no operator for its power iteration)."""
    from torch.nn.utils import parametrize

    network = _build(gen.family, gen.model_config,
                     {k: v.cpu() for k, v in gen.network.state_dict().items()}, str(gen.path))
    for module in [m for m in network.modules() if parametrize.is_parametrized(m)]:
        for name in list(module.parametrizations.keys()):
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return network.eval()


def onnx_export(gen: ImageGenerator) -> bytes:
    """model.onnx for gen's network, checked in onnxruntime against PyTorch on another batch size."""
    try:
        import onnx  # noqa: F401 - the exporter's dependency
        import onnxruntime  # noqa: F401 - checks the export
    except ImportError:
        raise UserError(f"--format onnx needs the onnx and onnxruntime packages: {ONNX_HINT}") from None
    conditional = gen.model_config.num_classes > 0
    graph = _OnnxGraph(_baked_network(gen), conditional)
    z = gen.latents(2, 0)
    args: tuple[torch.Tensor, ...] = (z, gen.labels(2)) if conditional else (z,)
    names = ["z", "labels"] if conditional else ["z"]
    kwargs: dict[str, Any] = {"dynamo": False} if _has_dynamo_flag() else {}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation notes the user cannot act on
        try:
            torch.onnx.export(graph, args, buffer, opset_version=ONNX_OPSET, input_names=names,
                              output_names=["images"], do_constant_folding=True,
                              dynamic_axes={n: {0: "batch"} for n in [*names, "images"]}, **kwargs)
        except Exception as e:  # noqa: BLE001 - an operator ONNX lacks: say which model
            raise UserError(f"model {gen.family.name!r} cannot be exported to ONNX "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    data = buffer.getvalue()
    difference = onnx_difference(data, gen, n=3)
    if difference is None or difference > ONNX_TOLERANCE:
        found = "fails on a batch of another size" if difference is None else \
            f"differs from PyTorch by {difference:.2g}"
        raise UserError(f"model {gen.family.name!r} cannot be exported to ONNX yet: the exported "
                        f"graph {found}; use {WEIGHTS} with latentstudio.load")
    return data


def onnx_difference(data: bytes, gen: ImageGenerator, n: int = 3, seed: int = 1) -> float | None:
    """max |onnxruntime - PyTorch| over n samples of seed `seed`, or None when onnxruntime fails."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # a failure is reported by the return value, not a log line
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    z, labels = gen.latents(n, seed), gen.labels(n)
    feed = {"z": z.numpy()}
    if labels is not None:
        feed["labels"] = labels.numpy()
    try:
        images = session.run(["images"], feed)[0]
    except Exception:  # noqa: BLE001 - onnxruntime's errors have no common type
        return None
    expected = gen.generate(z, labels)
    if tuple(images.shape) != tuple(expected.shape):
        return None
    return float((torch.from_numpy(images) - expected).abs().max())


def _has_dynamo_flag() -> bool:
    import inspect

    return "dynamo" in inspect.signature(torch.onnx.export).parameters
