"""The web application: the JSON API, the page, and errors that are always JSON.

    >>> from seethrough.web import create_app                        # doctest: +SKIP
    >>> app = create_app(["runs/digits-logreg", "runs/digits-smallcnn"])

Every error, whether raised by the library (:class:`~seethrough.errors.SeethroughError`:
400), by FastAPI (404, 413, 415, 422 ...) or by a bug (500), answers
``{"status": code, "message": "..."}``: one line, never a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..__version__ import __version__
from ..errors import SeethroughError
from .api import router
from .budget import MemoryBudget
from .guard import Guard
from .store import RunStore
from .uploads import MAX_BYTES, MAX_PIXELS, BodyLimit

MAX_MEMORY = 256 * 2**20  # what decoding uploads may hold at once: three 4000x4000 RGBA PNGs

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("seethrough.web")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "message": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _fastapi(**kwargs) -> FastAPI:
    """FastAPI whose /docs page uses a bundled Swagger UI (fastapi-offline): the page works
    offline and loads nothing from a CDN. Without that package, FastAPI's CDN-based /docs
    (which the Content-Security-Policy then blocks: install the web extra). No /redoc: ReDoc
    injects styles at run time, which the policy refuses, and /docs shows the same."""
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        return FastAPI(redoc_url=None, **kwargs)
    return FastAPIOffline(redoc_url=None, **kwargs)


def create_app(runs=(), *, data_dir=None, device: str = "cpu", max_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS, max_memory: int = MAX_MEMORY, hosts=(), workspace=None,
               limits=None) -> FastAPI:
    """A FastAPI app serving ``runs`` (run folders, or a ready :class:`RunStore`).

    ``max_bytes`` limits an uploaded file's size, ``max_pixels`` its width x height, and
    ``max_memory`` the bytes that decoding uploads may hold at once (:mod:`.budget`).
    Requests must name this server in their Host header: ``localhost``, ``127.0.0.1``,
    ``::1`` or one of ``hosts`` (:mod:`.guard`). ``workspace`` (a folder) is where the page
    keeps its data set and the runs it trains (:mod:`.workspace`); its runs are served too.
    ``limits`` (:class:`~.workspace.Limits`) caps it; by default its upload and pixel limits
    are ``max_bytes`` and ``max_pixels``.
    """
    from .train_api import install
    from .workspace import Limits, Workspace

    limits = limits or Limits(upload_bytes=int(max_bytes), pixels=int(max_pixels))
    ws = Workspace(workspace if workspace is not None else "seethrough-workspace", limits)
    store = runs if isinstance(runs, RunStore) else RunStore(
        list(runs) + ws.run_folders(), data_dir=data_dir, device=device, allow_empty=True)
    app = _fastapi(title="seethrough", version=__version__,
                  description="Watch an image flow through your own trained model: predictions, "
                              "layers, feature maps, kernels, the arithmetic of a convolution, "
                              "and explanations with their faithfulness scores.")
    app.state.store = store
    app.state.limits = {"max_bytes": int(max_bytes), "max_pixels": int(max_pixels)}
    app.state.budget = MemoryBudget(max_memory)
    app.include_router(router)
    install(app, ws)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return _error(422, _validation_message(exc))

    @app.exception_handler(SeethroughError)
    async def user_error(request: Request, exc: SeethroughError):
        return _error(400, str(exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("error serving %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # multipart adds a few hundred bytes of headers around the file
    app.add_middleware(BodyLimit, max_bytes=max(int(max_bytes), limits.upload_bytes) + 64 * 1024)
    app.add_middleware(Guard, hosts=tuple(hosts))  # outermost: a foreign host is refused before its body is read
    return app
