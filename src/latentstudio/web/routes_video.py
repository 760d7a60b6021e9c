"""Videos from a run's favourites: starred latents become the keyframes of a walk, rendered in a
background thread by the code behind `latentstudio interpolate` (explore.interpolate.write_walk)
and saved atomically as RUN/videos/NAME.mp4 or .gif. The page polls the job for its progress.

One render runs at a time per run (409 while one does); a run folder that cannot be written
answers 403 (read-only, no permission) or 507 (disk full) before any work starts.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import torch
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from latentstudio import atomic
from latentstudio.errors import UserError
from latentstudio.explore.latents import Keyframe
from latentstudio.web import curation
from latentstudio.web.gallery import Gallery, gallery

router = APIRouter()

FOLDER = "videos"
SUFFIXES = {".mp4": "video/mp4", ".gif": "image/gif"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PROBE = ".write-test"


class VideoRequest(BaseModel):
    """Favourite ids in the order the walk visits them, and how to walk between them."""

    items: list[str] = Field(default_factory=list, max_length=500)
    steps: int = Field(24, ge=1, le=600, description="frames per transition")
    hold: int = Field(0, ge=0, le=600, description="extra frames on each favourite")
    easing: Literal["linear", "smooth", "cubic"] = "smooth"
    fps: float = Field(24, ge=1, le=60)
    format: Literal["mp4", "gif"] = "mp4"
    loop: bool = False
    name: str | None = Field(None, max_length=64, description="file name without suffix")


@dataclass
class Job:
    """One render: its file, its keyframes, frames done of total, and how it ended."""

    name: str
    items: list[str]
    total: int
    done: int = 0
    state: str = "loading"  # loading, rendering, encoding, done, failed
    error: str | None = None
    status: int | None = None  # the HTTP status a failure corresponds to (403, 507, 409...)
    started: float = field(default_factory=time.time)
    seconds: float | None = None

    @property
    def running(self) -> bool:
        return self.state in ("loading", "rendering", "encoding")


class Videos:
    """The render jobs of one gallery app, the latest per run."""

    def __init__(self) -> None:
        self.jobs: dict[Path, Job] = {}
        self.lock = threading.Lock()


_app_lock = threading.Lock()


def videos(request: Request) -> Videos:
    """The app's render jobs (a FastAPI dependency), made on first use."""
    state = request.app.state
    with _app_lock:
        if not hasattr(state, "videos"):
            state.videos = Videos()
    return state.videos


def _refusal(path: Path, error: BaseException) -> HTTPException | None:
    """403/507 for a write into RUN/videos/ the file system refused, else None."""
    refusal = curation.refused_write(error, "a video", path / FOLDER)
    return None if refusal is None else HTTPException(refusal.status, str(refusal))


def _check_writable(path: Path) -> Path:
    """RUN/videos/, made and probed with a small write, or a 403/507 HTTPException."""
    folder = path / FOLDER
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise HTTPException(409, f"{FOLDER} in this run is a link or a file; move it away")
    try:
        folder.mkdir(exist_ok=True)
        atomic.write_bytes(folder / PROBE, b"\0" * 4096)
        (folder / PROBE).unlink()
    except OSError as e:
        refusal = _refusal(path, e)
        if refusal is None:
            raise UserError(f"cannot save a video in {folder}: {e.strerror or e}") from None
        raise refusal from None
    return folder


def _keyframes(path: Path, meta: dict[str, Any], ids: list[str]) -> list[Keyframe]:
    """The favourites `ids` as keyframes, or a 400 saying what is wrong with the choice."""
    items, _ = curation.read_curated(path)
    usable = {i["id"]: i for i in items if isinstance(i.get("latent"), list)}
    if len(usable) < 2:
        raise HTTPException(400, f"this run has {len(usable)} favourite(s) with a latent; star at "
                                 "least two samples (or latents from Play) to make a video")
    if len(ids) < 2:
        raise HTTPException(400, "choose at least two favourites, in the order to visit them")
    dim = int(meta["config"]["latent_dim"])
    classes = int((meta.get("model_config") or {}).get("num_classes") or 0)
    out = []
    for n, iid in enumerate(ids):
        if iid not in usable:
            known = "has no latent" if any(i.get("id") == iid for i in items) else "is not a favourite of this run"
            raise HTTPException(400, f"item {n + 1} of the order ({iid!r}) {known}")
        if n and ids[n - 1] == iid:
            raise HTTPException(400, f"item {n + 1} of the order repeats {iid!r} right after itself")
        z = usable[iid]["latent"]
        if len(z) != dim or not all(isinstance(v, (int, float)) for v in z):
            raise HTTPException(400, f"favourite {iid!r} holds a latent that does not fit this run")
        label = None
        if classes:  # a conditional run: the favourite's class, the first one if it has none
            label = usable[iid].get("label") or 0
            if not isinstance(label, int) or not 0 <= label < classes:
                raise HTTPException(400, f"favourite {iid!r} has class {label!r}, not one of this "
                                         f"run's 0..{classes - 1}")
        out.append(Keyframe(torch.tensor(z, dtype=torch.float32), label, iid))
    return out


def _chosen_name(req: VideoRequest) -> str | None:
    """The file name asked for (NAME.FORMAT), None for a default one, or a 400."""
    if not req.name:
        return None
    stem = req.name[:-4] if req.name.lower().endswith(tuple(SUFFIXES)) else req.name
    if not _NAME.match(stem):
        raise HTTPException(400, "a video name uses letters, digits, '.', '_' and '-' "
                                 f"(at most 64), not {req.name!r}")
    return f"{stem}.{req.format}"


def _default_name(folder: Path, suffix: str) -> str:
    stem = "walk-" + datetime.now().strftime("%Y%m%d-%H%M%S")
    name, n = f"{stem}.{suffix}", 2
    while (folder / name).exists():
        name, n = f"{stem}-{n}.{suffix}", n + 1
    return name


def _render(job: Job, path: Path, device: str, keyframes: list[Keyframe], out: Path,
            req: VideoRequest) -> None:
    """The background thread: load the run, render, write; the outcome goes into `job`."""
    from latentstudio.explore.interpolate import write_walk
    from latentstudio.runs import load_run

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total
        job.state = "encoding" if done >= total else "rendering"

    try:
        # A model of its own: the gallery's cached one may be mid-render with a shifted embedding.
        run = load_run(path, device=device)
        job.state = "rendering"
        write_walk(run, keyframes, out, steps=req.steps, loop=req.loop, fps=req.fps,
                   easing=req.easing, hold=req.hold, progress=progress)
        job.state = "done"
    except Exception as e:  # noqa: BLE001 - reported on the page, never kills the server
        refusal = _refusal(path, e)
        if refusal is not None:
            job.error, job.status = refusal.detail, refusal.status_code
        elif isinstance(e, UserError):
            job.error, job.status = str(e), 409
        else:
            job.error, job.status = f"rendering failed ({type(e).__name__}: {e})", 500
        job.state = "failed"
    finally:
        job.seconds = round(time.time() - job.started, 2)


def _job_json(name: str, job: Job | None) -> dict[str, Any]:
    if job is None:
        return {"state": "idle"}
    out = asdict(job)
    out["url"] = _video_url(name, job.name) if job.state == "done" else None
    return out


def _video_url(run: str, file: str) -> str:
    return f"/api/runs/{quote(run, safe='')}/videos/{quote(file)}"


@router.post("/api/runs/{name}/videos", status_code=202)
def start_video(name: str, req: VideoRequest, g: Gallery = Depends(gallery),
                v: Videos = Depends(videos)) -> dict[str, Any]:
    from latentstudio.explore.animation import frame_size
    from latentstudio.explore.interpolate import MAX_FRAMES, MAX_PIXELS, frame_count

    path, meta = g.existing_run(name)
    keyframes = _keyframes(path, meta, req.items)
    chosen = _chosen_name(req)
    total = frame_count(len(keyframes), req.steps, req.loop, req.hold)
    native = int(meta["config"].get("resolution") or 0)
    side = max(native, frame_size(native, req.format, None)) if native > 0 else 0
    if total > MAX_FRAMES or total * side * side > MAX_PIXELS:
        raise HTTPException(400, f"this video would have {total} frames of {side} x {side} px; at "
                                 f"most {MAX_FRAMES} frames and {MAX_PIXELS / 1e6:.0f} megapixels: "
                                 "lower the frames per transition or the hold, or choose fewer "
                                 "favourites")
    key = path.resolve()
    with v.lock:
        running = v.jobs.get(key)
        if running is not None and running.running:
            raise HTTPException(409, f"a video of this run is being rendered ({running.done} of "
                                     f"{running.total} frames); wait for it to finish")
        folder = _check_writable(path)
        file = chosen or _default_name(folder, req.format)
        job = v.jobs[key] = Job(file, list(req.items), total)
    threading.Thread(target=_render, args=(job, path, g.models.device, keyframes, folder / file, req),
                     name=f"video-{name}", daemon=True).start()
    return _job_json(name, job)


@router.get("/api/runs/{name}/videos/job")
def video_job(name: str, g: Gallery = Depends(gallery), v: Videos = Depends(videos)) -> dict[str, Any]:
    """The latest render of this run: state, frames done of total, the file's URL once done."""
    path = g.run_dir(name)
    return _job_json(name, v.jobs.get(path.resolve()))


@router.get("/api/runs/{name}/videos")
def list_videos(name: str, g: Gallery = Depends(gallery)) -> dict[str, Any]:
    """The run's saved videos, newest first."""
    folder = g.run_dir(name) / FOLDER
    found = []
    if folder.is_dir() and not folder.is_symlink():
        for p in folder.iterdir():
            if p.suffix.lower() in SUFFIXES and _NAME.match(p.name) and p.is_file() and not p.is_symlink():
                st = p.stat()
                found.append((st.st_mtime, {"name": p.name, "bytes": st.st_size,
                                            "url": _video_url(name, p.name)}))
    return {"videos": [f for _, f in sorted(found, key=lambda x: x[0], reverse=True)]}


@router.get("/api/runs/{name}/videos/{file}")
def video_file(name: str, file: str, g: Gallery = Depends(gallery)) -> FileResponse:
    path = g.run_dir(name)
    target = path / FOLDER / file
    suffix = Path(file).suffix.lower()
    if (not _NAME.match(file) or suffix not in SUFFIXES or (path / FOLDER).is_symlink()
            or target.is_symlink() or not target.is_file()):
        raise HTTPException(404, "no such video")
    return FileResponse(target, media_type=SUFFIXES[suffix], headers={"Cache-Control": "no-cache"})
