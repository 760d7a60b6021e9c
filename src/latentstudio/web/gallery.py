"""What every route of the gallery shares: the runs folder, the loaded models, and the checks
that turn a run name from a URL into a folder inside it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from latentstudio.errors import UserError
from latentstudio.web import curation, runs
from latentstudio.web.latent import Explorer, ModelCache


@dataclass
class Gallery:
    """The runs folder served and the model cache."""

    root: Path
    models: ModelCache

    def run_dir(self, name: str) -> Path:
        """The run folder `name`, or 404 (unsafe names and folders outside the root included)."""
        path = runs.resolve_run(self.root, name)
        if path is None:
            raise HTTPException(404, f"no run named {name!r}")
        return path

    def existing_run(self, name: str) -> tuple[Path, dict[str, Any]]:
        """The run folder and its config.json, or a UserError saying what is wrong with it."""
        path = self.run_dir(name)
        meta, problem = runs.read_meta(path)
        if meta is None:
            raise UserError(f"run {name!r} cannot be used: {problem}")
        return path, meta

    def explorer(self, name: str) -> Explorer:
        path, _ = self.existing_run(name)
        return self.models.get(path)

    def with_urls(self, path: Path, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Favourites as the page shows them: with the run, a file URL, no raw latent."""
        out = []
        for item in items:
            f = runs.resolve_file(self.root, f"{path.name}/{item.get('file', '')}")
            out.append({**{k: v for k, v in item.items() if k != "latent"}, "run": path.name,
                        "has_latent": item.get("latent") is not None,
                        "url": runs.file_url(self.root, f) if f else None})
        return out


def gallery(request: Request) -> Gallery:
    """The app's Gallery (a FastAPI dependency)."""
    return request.app.state.gallery


def keys_starred(path: Path) -> dict[str, str]:
    """Starred item ids by their image key."""
    items, _ = curation.read_curated(path)
    return {i.get("key"): i["id"] for i in items}


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
