"""The gallery server: a FastAPI app over one runs folder (`create_app(runs_dir)`).

Pages are plain HTML/JS/CSS from web/static; everything else is JSON under /api and the run
folders' own pictures under /files. Only files inside the runs folder are served, and only
RUN/curated.json, RUN/curated/ and RUN/videos/ (the video panel's renders) are ever written.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from latentstudio.errors import UserError
from latentstudio.web import routes_curation, routes_latent, routes_runs, routes_video
from latentstudio.web.gallery import Gallery
from latentstudio.web.guards import BodyLimit, SameOrigin
from latentstudio.web.latent import ModelCache
from latentstudio.web.routes_runs import STATIC

MAX_BODY_BYTES = 64 * 1024


def create_app(runs_dir: str | Path, device: str = "cpu",
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The gallery app for the run folders directly under `runs_dir`.

    `allowed_hosts` (e.g. ["127.0.0.1", "localhost"]) refuses other Host headers, which stops
    DNS-rebinding pages from reaching a server bound to loopback; None accepts any.
    """
    root = Path(runs_dir).resolve()
    if not root.is_dir():
        raise UserError(f"runs folder {runs_dir} does not exist")
    app = FastAPI(title="latentstudio gallery", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gallery = Gallery(root, ModelCache(device=device))
    app.add_middleware(SameOrigin)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
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

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for routes in (routes_runs, routes_latent, routes_curation, routes_video):
        app.include_router(routes.router)
    return app
