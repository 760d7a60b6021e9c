"""Pretrained GoogLeNet weights: an explicit file, the cache, or a one-time checked download.

The file is torchvision's googlenet-1378be20.pth. Like torch.hub, the eight hex digits in its name
are the start of its SHA-256, which a download must match before it is moved into the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from torch import nn

from latentstudio.errors import UserError
from latentstudio.models.googlenet import GoogLeNet
from latentstudio.models.weights import read_weights
from latentstudio.paths import cache_dir

GOOGLENET_URL = "https://download.pytorch.org/models/googlenet-1378be20.pth"
GOOGLENET_FILE = "googlenet-1378be20.pth"
GOOGLENET_SHA256_PREFIX = "1378be20"


def googlenet_cache_path() -> Path:
    """Where the downloaded GoogLeNet weights are kept."""
    return cache_dir() / "weights" / GOOGLENET_FILE


def download(url: str, dest: Path, sha256_prefix: str, timeout: float = 30.0) -> Path:
    """Fetch `url` into `dest` (atomically) if its SHA-256 starts with `sha256_prefix`.

    Network failures raise OSError (urllib's URLError is one); a wrong hash raises UserError.
    """
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if not digest.hexdigest().startswith(sha256_prefix):
            raise UserError(f"the download of {url} is corrupt (SHA-256 {digest.hexdigest()[:8]}..., "
                            f"expected {sha256_prefix}...): run the command again")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def googlenet_weights(path: str | os.PathLike | None = None) -> Path:
    """The GoogLeNet weights file: `path` if given, else the cached copy, downloaded once if needed."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(f"weights file not found: {path}")
        return path
    cached = googlenet_cache_path()
    if cached.is_file():
        return cached
    try:
        return download(GOOGLENET_URL, cached, GOOGLENET_SHA256_PREFIX)
    except OSError as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(f"GoogLeNet weights are not in the cache and could not be downloaded "
                        f"({reason}): download {GOOGLENET_URL} and put it at {cached} "
                        "(or pass --weights PATH; --net lite0 works offline)") from e


def load_googlenet(path: str | os.PathLike | None = None) -> nn.Module:
    """GoogLeNet in eval mode with the ImageNet weights (see `googlenet_weights`); input RGB in [-1, 1]."""
    file = googlenet_weights(path)
    state = read_weights(file, "GoogLeNet")
    model = GoogLeNet(aux_logits=True, transform_input=False)
    if not isinstance(state, dict):
        raise UserError(f"{file} does not hold a state dict")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # wrong shapes
        raise UserError(f"{file} is not a torchvision GoogLeNet state dict: "
                        f"{str(e).splitlines()[-1].strip()}") from e
    # Files saved without batch-norm counters are fine: the counters only matter for training.
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise UserError(f"{file} is not a torchvision GoogLeNet state dict: "
                        f"missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}")
    return model.eval()
