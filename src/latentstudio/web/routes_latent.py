"""Latent play: directions, rendering a moved latent, seeded samples, walks between favourites."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import torch
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from latentstudio.errors import UserError
from latentstudio.images import to_pil
from latentstudio.web import curation
from latentstudio.web.gallery import Gallery, data_url, gallery, keys_starred
from latentstudio.web.latent import MAX_SEED, Point, gif_bytes, png_bytes

MAX_SAMPLES = 32

router = APIRouter()


Slider = Annotated[float, Field(ge=-10, le=10)]  # also refuses NaN and infinities


class LatentSpec(BaseModel):
    """A seed moved along principal directions and concept vectors (slider values)."""

    seed: int = Field(0, ge=0, le=MAX_SEED)
    label: int | None = Field(None, ge=0, le=100_000)
    directions: list[Slider] = Field(default_factory=list, max_length=64)
    vectors: dict[str, Slider] = Field(default_factory=dict, max_length=64)


class InterpolateRequest(BaseModel):
    a: str = Field(max_length=32)
    b: str = Field(max_length=32)
    frames: int = Field(24, ge=2, le=120)
    fps: float = Field(12, gt=0, le=50)


@router.get("/api/runs/{name}/latent")
def latent_info(name: str, g: Gallery = Depends(gallery)) -> dict[str, Any]:
    return g.explorer(name).info()


@router.post("/api/runs/{name}/render")
def render(name: str, spec: LatentSpec, g: Gallery = Depends(gallery)) -> dict[str, Any]:
    ex = g.explorer(name)
    t0 = time.perf_counter()
    point = ex.point(spec.seed, spec.label, spec.directions, spec.vectors)
    png = png_bytes(ex.render(point))
    key = ex.key(point)
    starred = keys_starred(ex.run.path)
    return {"image": data_url(png), "key": key, "starred": key in starred,
            "id": starred.get(key), "ms": round((time.perf_counter() - t0) * 1000, 1)}


@router.get("/api/runs/{name}/samples")
def samples(name: str, seed: int = Query(0, ge=0, le=MAX_SEED - MAX_SAMPLES),
            n: int = Query(8, ge=1, le=MAX_SAMPLES),
            label: int | None = Query(None, ge=0, le=100_000),
            g: Gallery = Depends(gallery)) -> dict[str, Any]:
    ex = g.explorer(name)
    labels = ex.labels(label)
    z = torch.cat([ex.run.latents(1, s) for s in range(seed, seed + n)])
    images = ex.run.generate(z, labels.repeat(n) if labels is not None else None)
    starred = keys_starred(ex.run.path)
    out = []
    for i, img in enumerate(images):
        key = ex.key(Point(z[i:i + 1], labels))
        out.append({"seed": seed + i, "key": key, "starred": key in starred,
                    "id": starred.get(key), "image": data_url(png_bytes(to_pil(img)))})
    return {"step": ex.step, "samples": out}


@router.post("/api/runs/{name}/interpolate")
def interpolate(name: str, req: InterpolateRequest, g: Gallery = Depends(gallery)) -> Response:
    ex = g.explorer(name)
    ends = []
    for iid in (req.a, req.b):
        item = curation.find_item(ex.run.path, iid)
        if item is None:
            raise HTTPException(404, f"no favourite {iid!r} in this run")
        z = item.get("latent")
        if not isinstance(z, list) or len(z) != ex.run.config.latent_dim:
            raise UserError("only favourites with a latent (generated samples) can be interpolated")
        ends.append(Point(torch.tensor(z, dtype=torch.float32)[None], ex.labels(item.get("label"))))
    frames = ex.interpolate(ends[0], ends[1], req.frames)
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"{name}-{req.a}-{req.b}.gif")
    return Response(gif_bytes(frames, req.fps), media_type="image/gif",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})

