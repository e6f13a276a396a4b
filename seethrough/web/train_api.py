"""The JSON API for building a data set in the page and training on it.

    /api/workspace                              the data set: classes, image ids, bytes used, limits
    /api/workspace/classes                      POST name: a new class
    /api/workspace/classes/{cls}                DELETE: the class and its images
    /api/workspace/classes/{cls}/images         POST files (images): add them
    /api/workspace/classes/{cls}/zip            POST archive (a zip of images): add them
    /api/workspace/classes/{cls}/images/{id}    GET: the stored PNG; DELETE: remove it
    /api/trainings                              GET: every training; POST model, epochs, size: queue one
    /api/trainings/events                       server-sent events: the list again at every change
    /api/trainings/{id}/cancel                  POST: take it out of the line, or stop it
    /api/models/{id}/zip                        GET: the run folder as a zip

A request over one of the workspace's limits answers ``{"status", "message", "limit"}``
with ``limit`` naming it (:class:`~.workspace.Limits`).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import zipfile
from contextlib import asynccontextmanager

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from .jobs import JobQueue
from . import training
from .training import MODELS, SIZES, check_dataset, check_request, make_worker
from .workspace import LimitExceeded, NotFound, Workspace

router = APIRouter(prefix="/api")
EVENT_POLL_S = 0.2     # how often the event stream looks for a change
EVENT_KEEPALIVE_S = 15  # a comment line this often keeps proxies from closing an idle stream


def install(app, workspace: Workspace) -> None:
    """Give ``app`` the workspace, the training queue and these routes."""
    queue_ref: list = []
    queue = JobQueue(make_worker(workspace, app.state.store, queue_ref), workspace.limits.queued_trainings)
    queue_ref.append(queue)
    app.state.workspace, app.state.trainings = workspace, queue
    app.include_router(router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):  # on shutdown: stop the running training, drop the waiting ones
        async with inner(a) as state:
            yield state
        await asyncio.to_thread(queue.close)

    app.router.lifespan_context = lifespan

    @app.exception_handler(LimitExceeded)
    async def over_limit(request: Request, exc: LimitExceeded):
        return JSONResponse({"status": exc.status, "message": str(exc), "limit": exc.limit}, status_code=exc.status)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return JSONResponse({"status": 404, "message": str(exc)}, status_code=404)


def _ws(request: Request) -> Workspace:
    return request.app.state.workspace


def _queue(request: Request) -> JobQueue:
    return request.app.state.trainings


def _read_all(request: Request, files: list[UploadFile]) -> list[tuple[bytes, str | None]]:
    cap = _ws(request).limits.upload_bytes
    out, total = [], 0
    for f in files:
        data = f.file.read(cap + 1)
        total += len(data)
        if total > cap:
            raise LimitExceeded("upload_bytes", f"the files of one request come to more than the limit "
                                                f"(upload_bytes) of {cap:,} bytes; send fewer at a time")
        out.append((data, f.content_type))
    return out


# ---------------------------------------------------------------------------- the data set
@router.get("/workspace", summary="The page's data set: classes, their images, the limits")
def workspace(request: Request) -> dict:
    ws = _ws(request)
    return {**ws.summary(), "folder": str(ws.root), "runs": len(ws.run_folders()),
            "models": training.model_choices(request.app.state.store), "sizes": list(SIZES),
            "demo_epochs": training.DEMO_EPOCHS}


@router.post("/workspace/classes", summary="Add a class")
def add_class(request: Request, name: str = Form("", description="1-40 letters, digits, spaces, - or _.")) -> dict:
    return {"name": _ws(request).add_class(name)}


@router.delete("/workspace/classes/{name}", summary="Remove a class and its images")
def remove_class(request: Request, name: str) -> dict:
    _ws(request).remove_class(name)
    return {"removed": name}


@router.post("/workspace/classes/{name}/images", summary="Add images to a class")
def add_images(request: Request, name: str,
               images: list[UploadFile] = File(..., description="Image files (PNG, JPEG, GIF, BMP, WebP, TIFF).")) -> dict:
    """Each file is checked like an upload to predict (type, bytes, pixels), shrunk to at most
    256 pixels a side and stored as PNG under a name the server makes. Files that are not
    images are skipped and named in ``skipped``; over a limit, nothing is stored."""
    return _ws(request).add_images(name, _read_all(request, images))


@router.post("/workspace/classes/{name}/zip", summary="Add the images in a zip archive to a class")
def add_zip(request: Request, name: str, archive: UploadFile = File(..., description="A .zip of images.")) -> dict:
    ((data, _),) = _read_all(request, [archive])
    return _ws(request).add_zip(name, data)


@router.get("/workspace/classes/{name}/images/{image_id}", summary="One stored image (PNG)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_image(request: Request, name: str, image_id: str):
    return FileResponse(_ws(request).image_path(name, image_id), media_type="image/png",
                        headers={"Cache-Control": "max-age=86400, immutable"})


@router.delete("/workspace/classes/{name}/images/{image_id}", summary="Remove one image")
def remove_image(request: Request, name: str, image_id: str) -> dict:
    _ws(request).remove_image(name, image_id)
    return {"removed": image_id}


# ---------------------------------------------------------------------------- trainings
@router.get("/trainings", summary="Every training: waiting, running and recently finished")
def trainings(request: Request) -> list[dict]:
    return _queue(request).list()


@router.post("/trainings", summary="Train on the page's data set (or the demo's digits)")
def start_training(request: Request, model: str = Form("smallcnn", description=f"One of {', '.join(MODELS)}, "
                                                     "or run:ID to start from a served run's layers."),
                   epochs: int = Form(20, description="Passes over the training images."),
                   size: int = Form(64, description=f"Images are resized to size x size: {SIZES}."),
                   demo: bool = Form(False, description="Train the demo's two digit models instead.")) -> dict:
    """Queues a training and answers at once with its id and place in the line (0: running).
    Its progress comes over ``GET /api/trainings/events``."""
    ws, queue = _ws(request), _queue(request)
    ws.check_room()
    if demo:
        job = queue.submit("demo", {"model": "logreg, smallcnn", "data": "digits"}, epochs=2 * training.DEMO_EPOCHS)
    else:
        req = check_request(model, epochs, size, request.app.state.store)
        check_dataset(ws)  # refused now rather than after waiting in line
        job = queue.submit("train", req, epochs=req["epochs"])
    return queue.snapshot(job)


@router.post("/trainings/{job_id}/cancel", summary="Cancel a training")
def cancel_training(request: Request, job_id: str) -> dict:
    try:
        job = _queue(request).cancel(job_id)
    except KeyError:
        raise HTTPException(404, f"no training with id {job_id!r}; GET /api/trainings lists them") from None
    return _queue(request).snapshot(job)


@router.get("/trainings/events", summary="Server-sent events: every training, again at each change",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def training_events(request: Request):
    """A ``text/event-stream``: an event ``trainings`` whose data is the JSON list of
    ``GET /api/trainings``, sent at once and again whenever a training moves."""
    queue = _queue(request)

    async def stream():
        seen, quiet = None, 0.0
        while not await request.is_disconnected():
            if queue.version != seen:
                seen = queue.version
                yield f"event: trainings\ndata: {json.dumps(queue.list())}\n\n"
                quiet = 0.0
            elif quiet >= EVENT_KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(EVENT_POLL_S)
            quiet += EVENT_POLL_S

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ---------------------------------------------------------------------------- a run as a zip
@router.get("/models/{model_id}/zip", summary="The model's run folder as a zip",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def run_zip(request: Request, model_id: str):
    """Every file of the run folder (model.json, weights, metrics, evaluation, checkpoint and,
    for a run trained in the page, the images it was trained on), under ``<run name>/``;
    ``seethrough evaluate``, ``predict``, ``explain`` and ``report`` read it once unpacked."""
    from .api import _run

    run = _run(request, model_id)
    folder = run.folder.resolve()
    tmp = tempfile.TemporaryFile()
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _, files in os.walk(folder):
            for f in sorted(files):
                path = os.path.join(dirpath, f)
                if os.path.isfile(path) and not os.path.islink(path) and not f.startswith("."):
                    zf.write(path, os.path.join(folder.name, os.path.relpath(path, folder)))
    size = tmp.tell()
    tmp.seek(0)

    def chunks():
        with tmp:
            while block := tmp.read(1 << 16):
                yield block

    return StreamingResponse(chunks(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{run.id}.zip"', "Content-Length": str(size)})
