"""Favourites: listing, starring a rendered latent or a preview-grid cell, unstarring."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from pydantic import Field

from latentstudio.errors import UserError
from latentstudio.web import curation, runs
from latentstudio.web.gallery import Gallery, gallery
from latentstudio.web.latent import preview_latent
from latentstudio.web.routes_latent import LatentSpec

router = APIRouter()


class StarRequest(LatentSpec):
    """Star a rendered latent (source "latent") or one cell of a preview grid (source "grid")."""

    source: Literal["latent", "grid"] = "latent"
    epoch: int | None = Field(None, ge=0, le=10**7)  # grids of earlier versions: by epoch
    grid: str | None = Field(None, pattern=r"^(step_\d{1,9}|epoch_\d{1,7})$")
    index: int | None = Field(None, ge=0, le=10**6)


@router.get("/api/curated")
def all_curated(g: Gallery = Depends(gallery)) -> dict[str, Any]:
    out = []
    for summary in runs.list_runs(g.root):
        path = g.root / summary["name"]
        items, problem = curation.read_curated(path)
        if items or problem:
            out.append({"name": summary["name"], "problem": problem, "items": g.with_urls(path, items)})
    return {"runs": out}


@router.get("/api/runs/{name}/curated")
def run_curated(name: str, g: Gallery = Depends(gallery)) -> dict[str, Any]:
    path = g.run_dir(name)
    items, problem = curation.read_curated(path)
    return {"items": g.with_urls(path, items), "problem": problem}


@router.post("/api/runs/{name}/curated", status_code=201)
def star(name: str, req: StarRequest, g: Gallery = Depends(gallery)) -> dict[str, Any]:
    path, meta = g.existing_run(name)
    if req.source == "grid":
        item = _star_grid(g, path, meta, req)
    else:
        ex = g.models.get(path)
        point = ex.point(req.seed, req.label, req.directions, req.vectors)
        info = {"source": "latent", "seed": req.seed, "step": ex.step,
                "directions": list(req.directions), "vectors": dict(req.vectors)}
        item = curation.add_item(path, ex.key(point), ex.render(point), info, point.z,
                                 None if point.labels is None else int(point.labels[0]))
    return g.with_urls(path, [item])[0]


def _star_grid(g: Gallery, path: Path, meta: dict[str, Any], req: StarRequest) -> dict[str, Any]:
    if (req.epoch is None and req.grid is None) or req.index is None:
        raise HTTPException(422, "a grid star needs the grid (or its epoch) and the index")
    name = req.grid or f"epoch_{req.epoch:04d}"
    grid = runs.resolve_file(g.root, f"{path.name}/samples/{name}.png")
    if grid is None:
        raise HTTPException(404, f"no preview grid {name}")
    unit, n = runs.grid_position(name + ".png")
    try:
        layout = runs.grid_layout(meta)
    except (TypeError, ValueError, KeyError, AttributeError):
        raise UserError("this run's config.json has unexpected preview settings") from None
    image = runs.crop_cell(grid, layout, req.index)
    if image is None:
        raise UserError(f"cell {req.index} is not in the grid {name} "
                        "(the grid is unreadable or laid out differently)")
    cell = layout["cells"][req.index]
    latent = None
    if cell["z"] is not None:
        latent = preview_latent(meta, cell["z"])
    epoch = n if unit == "epoch" else None
    info = {"source": "grid", "grid": name, "epoch": epoch, "step": n if unit == "step" else None,
            "index": req.index, "kind": cell["kind"], "seed": None}
    key = f"grid:{epoch if epoch is not None else name}:{req.index}"  # epoch keys as before
    return curation.add_item(path, key, image, info, latent, cell["label"])


@router.delete("/api/runs/{name}/curated/{iid}", status_code=204)
def unstar(name: str, iid: str, g: Gallery = Depends(gallery)) -> Response:
    path = g.run_dir(name)
    if not curation.remove_item(path, iid):
        raise HTTPException(404, "no such favourite")
    return Response(status_code=204)

