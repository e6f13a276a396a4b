"""The local web page: an uploaded or drawn image flows through your own model.

:func:`create_app` builds the FastAPI app (JSON API under ``/api``, documented at
``/docs``; the page at ``/``); ``seethrough serve RUN...`` runs it with uvicorn.
"""

from .app import create_app
from .store import Run, RunStore

__all__ = ["create_app", "Run", "RunStore"]
