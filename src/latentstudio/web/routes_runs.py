"""Pages, the run folders' files, and the runs list and run detail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

from latentstudio.web import curation, runs
from latentstudio.web.gallery import Gallery, gallery

STATIC = Path(__file__).parent / "static"

router = APIRouter()


VIEW = '<main id="view" aria-live="polite"></main>'


@router.get("/", include_in_schema=False)
def index(g: Gallery = Depends(gallery)) -> HTMLResponse:
    """The page, with the runs list already in it (the script then keeps it fresh)."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    view = VIEW.replace("></main>", f">{runs.runs_page_html(g.root)}</main>")
    return HTMLResponse(page.replace(VIEW, view), headers={"Cache-Control": "no-cache"})


@router.get("/files/{path:path}", include_in_schema=False)
def files(path: str, g: Gallery = Depends(gallery)) -> FileResponse:
    found = runs.resolve_file(g.root, path)
    if found is None:
        raise HTTPException(404, "not found")
    return FileResponse(found, headers={"Cache-Control": "no-cache"})


@router.get("/api/runs")
def list_runs(g: Gallery = Depends(gallery)) -> dict[str, Any]:
    return {"root": str(g.root), "runs": runs.list_runs(g.root)}


@router.get("/api/runs/{name}")
def run_detail(name: str, g: Gallery = Depends(gallery)) -> dict[str, Any]:
        path = g.run_dir(name)
        summary = runs.summarize(g.root, path)
        meta, _ = runs.read_meta(path)
        records, _ = runs.read_metrics(path)
        items, curated_problem = curation.read_curated(path)
        extra: dict[str, Any] = {
            "grids": [runs.grid_entry(g.root, n, p) for n, p in runs.sample_grids(path)],
            "gif": None, "curves": runs.metric_curves(records), "config": None, "layout": None,
            "curated": g.with_urls(path, items),
        }
        if curated_problem:
            summary["problems"].append(curated_problem)
        gif = path / "progress.gif"
        if gif.is_file():
            extra["gif"] = runs.file_url(g.root, gif)
        if meta is not None:
            extra.update(config=meta.get("config"), model_config=meta.get("model_config"),
                         data=meta.get("data"))
            try:
                layout = runs.grid_layout(meta)
                cells = layout.pop("cells")
                extra["layout"] = {**layout, "count": len(cells), "kinds": [c["kind"] for c in cells],
                                   "rows": runs.row_labels({**layout, "cells": cells})}
            except (TypeError, ValueError, KeyError, AttributeError):
                summary["problems"].append("config.json has unexpected preview settings")
        return {**summary, **extra}



@router.get("/api/runs/{name}/grids/{grid}/labelled.png")
def labelled_grid(name: str, grid: str, g: Gallery = Depends(gallery)) -> Response:
    """Preview grid `grid` (`step_000500`, `epoch_0003`, or a bare epoch number) with its rows
    named (real / reconstruction / sample), enlarged."""
    import io

    path, meta = g.existing_run(name)
    grids = dict(runs.sample_grids(path))
    key = f"epoch_{int(grid):04d}" if grid.isascii() and grid.isdigit() else grid
    if key not in grids:
        raise HTTPException(404, f"run {name!r} has no preview grid {grid}")
    try:
        picture = runs.labelled_grid(grids[key], runs.grid_layout(meta))
    except (TypeError, ValueError, KeyError, AttributeError):
        picture = None
    if picture is None:
        raise HTTPException(409, "the grid does not match the run's preview settings")
    buf = io.BytesIO()
    picture.save(buf, "PNG")
    return Response(buf.getvalue(), media_type="image/png",
                    headers={"Content-Disposition": f'inline; filename="{name}-{key}-labelled.png"'})
