"""The gallery server: a FastAPI app over one runs folder (`create_app(runs_dir)`).

Pages are plain HTML/JS/CSS from web/static; everything else is JSON under /api and the run
folders' own pictures under /files. Only files inside the runs folder are served, and only
RUN/curated.json and RUN/curated/ are ever written.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from latentstudio.errors import UserError
from latentstudio.images import to_pil
from latentstudio.web import curation, runs
from latentstudio.web.latent import (
    MAX_SEED,
    Explorer,
    ModelCache,
    Point,
    gif_bytes,
    png_bytes,
    preview_latent,
)

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024
MAX_SAMPLES = 32

Slider = Annotated[float, Field(ge=-10, le=10)]  # also refuses NaN and infinities


class LatentSpec(BaseModel):
    """A seed moved along principal directions and concept vectors (slider values)."""

    seed: int = Field(0, ge=0, le=MAX_SEED)
    label: int | None = Field(None, ge=0, le=100_000)
    directions: list[Slider] = Field(default_factory=list, max_length=64)
    vectors: dict[str, Slider] = Field(default_factory=dict, max_length=64)


class StarRequest(LatentSpec):
    """Star a rendered latent (source "latent") or one cell of a preview grid (source "grid")."""

    source: Literal["latent", "grid"] = "latent"
    epoch: int | None = Field(None, ge=0, le=10**7)
    index: int | None = Field(None, ge=0, le=10**6)


class InterpolateRequest(BaseModel):
    a: str = Field(max_length=32)
    b: str = Field(max_length=32)
    frames: int = Field(24, ge=2, le=120)
    fps: float = Field(12, gt=0, le=50)


class _BodyLimit:
    """Refuse request bodies over max_bytes with 413 (checked while reading, not only the header)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await JSONResponse({"detail": "request body too large"}, 413)(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await JSONResponse({"detail": "request body too large"}, 413)(scope, receive, send)
            if not message.get("more_body"):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> dict[str, Any]:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class _SameOrigin:
    """Refuse writes that a browser sends on behalf of another site (Origin differs from Host)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(scope["headers"])
            origin = headers.get(b"origin", b"").decode("latin-1")
            host = headers.get(b"host", b"").decode("latin-1")
            if origin and urlsplit(origin).netloc != host:
                return await JSONResponse({"detail": "cross-origin request refused"}, 403)(
                    scope, receive, send)
        await self.app(scope, receive, send)


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def create_app(runs_dir: str | Path, device: str = "cpu",
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The gallery app for the run folders directly under `runs_dir`.

    `allowed_hosts` (e.g. ["127.0.0.1", "localhost"]) refuses other Host headers, which stops
    DNS-rebinding pages from reaching a server bound to loopback; None accepts any.
    """
    root = Path(runs_dir).resolve()
    if not root.is_dir():
        raise UserError(f"runs folder {runs_dir} does not exist")
    models = ModelCache(device=device)
    app = FastAPI(title="latentstudio gallery", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.root, app.state.models = root, models
    app.add_middleware(_SameOrigin)
    app.add_middleware(_BodyLimit, max_bytes=MAX_BODY_BYTES)
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        # curation.FolderNotWritable carries its own status (403 read-only, 507 disk full).
        return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 409))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Without echoing the input back: it may hold NaN, which JSON cannot carry.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    def run_dir(name: str) -> Path:
        path = runs.resolve_run(root, name)
        if path is None:
            raise HTTPException(404, f"no run named {name!r}")
        return path

    def existing_run(name: str) -> tuple[Path, dict[str, Any]]:
        path = run_dir(name)
        meta, problem = runs.read_meta(path)
        if meta is None:
            raise UserError(f"run {name!r} cannot be used: {problem}")
        return path, meta

    def with_urls(path: Path, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            f = runs.resolve_file(root, f"{path.name}/{item.get('file', '')}")
            out.append({**{k: v for k, v in item.items() if k != "latent"}, "run": path.name,
                        "has_latent": item.get("latent") is not None,
                        "url": runs.file_url(root, f) if f else None})
        return out

    def keys_starred(path: Path) -> dict[str, str]:
        items, _ = curation.read_curated(path)
        return {i.get("key"): i["id"] for i in items}

    def explorer(name: str) -> Explorer:
        path, _ = existing_run(name)
        return models.get(path)

    # ----- pages
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/files/{path:path}", include_in_schema=False)
    def files(path: str) -> FileResponse:
        found = runs.resolve_file(root, path)
        if found is None:
            raise HTTPException(404, "not found")
        return FileResponse(found, headers={"Cache-Control": "no-cache"})

    # ----- runs
    @app.get("/api/runs")
    def list_runs() -> dict[str, Any]:
        return {"root": str(root), "runs": runs.list_runs(root)}

    @app.get("/api/runs/{name}")
    def run_detail(name: str) -> dict[str, Any]:
        path = run_dir(name)
        summary = runs.summarize(root, path)
        meta, _ = runs.read_meta(path)
        records, _ = runs.read_metrics(path)
        items, curated_problem = curation.read_curated(path)
        extra: dict[str, Any] = {
            "grids": [{"epoch": e, "url": runs.file_url(root, p)} for e, p in runs.sample_grids(path)],
            "gif": None, "curves": runs.metric_curves(records), "config": None, "layout": None,
            "curated": with_urls(path, items),
        }
        if curated_problem:
            summary["problems"].append(curated_problem)
        gif = path / "progress.gif"
        if gif.is_file():
            extra["gif"] = runs.file_url(root, gif)
        if meta is not None:
            extra.update(config=meta.get("config"), model_config=meta.get("model_config"),
                         data=meta.get("data"))
            try:
                layout = runs.grid_layout(meta)
                cells = layout.pop("cells")
                extra["layout"] = {**layout, "count": len(cells), "kinds": [c["kind"] for c in cells]}
            except (TypeError, ValueError, KeyError, AttributeError):
                summary["problems"].append("config.json has unexpected preview settings")
        return {**summary, **extra}

    # ----- latent play
    @app.get("/api/runs/{name}/latent")
    def latent_info(name: str) -> dict[str, Any]:
        return explorer(name).info()

    @app.post("/api/runs/{name}/render")
    def render(name: str, spec: LatentSpec) -> dict[str, Any]:
        ex = explorer(name)
        t0 = time.perf_counter()
        point = ex.point(spec.seed, spec.label, spec.directions, spec.vectors)
        png = png_bytes(ex.render(point))
        key = ex.key(point)
        starred = keys_starred(ex.run.path)
        return {"image": _data_url(png), "key": key, "starred": key in starred,
                "id": starred.get(key), "ms": round((time.perf_counter() - t0) * 1000, 1)}

    @app.get("/api/runs/{name}/samples")
    def samples(name: str, seed: int = Query(0, ge=0, le=MAX_SEED - MAX_SAMPLES),
                n: int = Query(8, ge=1, le=MAX_SAMPLES),
                label: int | None = Query(None, ge=0, le=100_000)) -> dict[str, Any]:
        ex = explorer(name)
        labels = ex.labels(label)
        z = torch.cat([ex.run.latents(1, s) for s in range(seed, seed + n)])
        images = ex.run.generate(z, labels.repeat(n) if labels is not None else None)
        starred = keys_starred(ex.run.path)
        out = []
        for i, img in enumerate(images):
            key = ex.key(Point(z[i:i + 1], labels))
            out.append({"seed": seed + i, "key": key, "starred": key in starred,
                        "id": starred.get(key), "image": _data_url(png_bytes(to_pil(img)))})
        return {"step": ex.step, "samples": out}

    # ----- curation
    @app.get("/api/curated")
    def all_curated() -> dict[str, Any]:
        out = []
        for summary in runs.list_runs(root):
            path = root / summary["name"]
            items, problem = curation.read_curated(path)
            if items or problem:
                out.append({"name": summary["name"], "problem": problem, "items": with_urls(path, items)})
        return {"runs": out}

    @app.get("/api/runs/{name}/curated")
    def run_curated(name: str) -> dict[str, Any]:
        path = run_dir(name)
        items, problem = curation.read_curated(path)
        return {"items": with_urls(path, items), "problem": problem}

    @app.post("/api/runs/{name}/curated", status_code=201)
    def star(name: str, req: StarRequest) -> dict[str, Any]:
        path, meta = existing_run(name)
        if req.source == "grid":
            item = _star_grid(path, meta, req)
        else:
            ex = models.get(path)
            point = ex.point(req.seed, req.label, req.directions, req.vectors)
            info = {"source": "latent", "seed": req.seed, "step": ex.step,
                    "directions": list(req.directions), "vectors": dict(req.vectors)}
            item = curation.add_item(path, ex.key(point), ex.render(point), info, point.z,
                                     None if point.labels is None else int(point.labels[0]))
        return with_urls(path, [item])[0]

    def _star_grid(path: Path, meta: dict[str, Any], req: StarRequest) -> dict[str, Any]:
        if req.epoch is None or req.index is None:
            raise HTTPException(422, "a grid star needs epoch and index")
        grid = runs.resolve_file(root, f"{path.name}/samples/epoch_{req.epoch:04d}.png")
        if grid is None:
            raise HTTPException(404, f"no preview grid for epoch {req.epoch}")
        try:
            layout = runs.grid_layout(meta)
        except (TypeError, ValueError, KeyError, AttributeError):
            raise UserError("this run's config.json has unexpected preview settings") from None
        image = runs.crop_cell(grid, layout, req.index)
        if image is None:
            raise UserError(f"cell {req.index} is not in the grid of epoch {req.epoch} "
                            "(the grid is unreadable or laid out differently)")
        cell = layout["cells"][req.index]
        latent = None
        if cell["z"] is not None:
            latent = preview_latent(meta, cell["z"])
        info = {"source": "grid", "epoch": req.epoch, "index": req.index, "kind": cell["kind"],
                "seed": None}
        return curation.add_item(path, f"grid:{req.epoch}:{req.index}", image, info, latent,
                                 cell["label"])

    @app.delete("/api/runs/{name}/curated/{iid}", status_code=204)
    def unstar(name: str, iid: str) -> Response:
        path = run_dir(name)
        if not curation.remove_item(path, iid):
            raise HTTPException(404, "no such favourite")
        return Response(status_code=204)

    @app.post("/api/runs/{name}/interpolate")
    def interpolate(name: str, req: InterpolateRequest) -> Response:
        ex = explorer(name)
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

    return app
